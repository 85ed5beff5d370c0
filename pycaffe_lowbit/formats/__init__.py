"""Caffe's file formats: prototxt text (``text``), ``.caffemodel`` and
``.solverstate`` (``caffemodel``), BlobProto and ``.binaryproto`` (``blobproto``),
HDF5 weights and snapshots (``hdf5``), the V0/V1 upgrades (``upgrade``,
``upgrade_v0``) and weight copying by layer name (``weights``).

pycaffe's ``caffe.io`` (``load_image``, ``Transformer``...) is
``pycaffe_lowbit.io``, defined in ``pycaffe/io.py`` over these modules.
"""
