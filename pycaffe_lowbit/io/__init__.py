"""File formats: BlobProto, .caffemodel, prototxt text, legacy upgrade, HDF5.

Also pycaffe's ``caffe.io`` functions (``load_image``, ``Transformer``,
``blobproto_to_array``, ``array_to_datum``...), defined in ``pycaffe_io`` and
reachable here; they are imported on first use so that ``import
pycaffe_lowbit`` stays fast.
"""
_PYCAFFE_NAMES = (
    "blobproto_to_array", "array_to_blobproto", "arraylist_to_blobprotovector_str",
    "blobprotovector_str_to_arraylist", "array_to_datum", "datum_to_array",
    "Transformer", "load_image", "resize_image", "oversample",
)


def __getattr__(name):
    if name in _PYCAFFE_NAMES:
        from ..pycaffe import io as pycaffe_io
        value = getattr(pycaffe_io, name)
        globals()[name] = value
        return value
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def __dir__():
    return sorted(set(globals()) | set(_PYCAFFE_NAMES))
