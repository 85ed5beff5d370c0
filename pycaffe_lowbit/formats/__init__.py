"""Caffe's file formats: prototxt text (``text``), ``.caffemodel`` and
``.solverstate`` (``caffemodel``), BlobProto and ``.binaryproto`` (``blobproto``),
HDF5 weights and snapshots (``hdf5``), the V0/V1 upgrades (``upgrade``,
``upgrade_v0``), weight copying by layer name (``weights``), and the
protocol-buffer varints of the fast readers (``wire``).

pycaffe's ``caffe.io`` (``load_image``, ``Transformer``...) is
``pycaffe_lowbit.io`` (``pycaffe_lowbit/io.py``), over these modules.
"""
