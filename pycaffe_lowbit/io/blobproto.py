"""BlobProto <-> arrays and Blobs.

A BlobProto carries its shape either as ``shape.dim`` (N-D) or in the legacy
4-D fields ``num, channels, height, width``, and its values in ``data``/``diff``
(float) or ``double_data``/``double_diff``.

Caffe compares a legacy 4-D proto with an N-D blob by indexing the blob's
shape from the end (a bias of shape (N,) matches 1x1x1xN, an InnerProduct weight
(M, K) matches 1x1xMxK); ``shape_matches`` does the same.
"""
import numpy as np

from .. import backend
from ..blob import Blob
from ..proto import caffe_pb2

_LEGACY = ("num", "channels", "height", "width")


def has_legacy_dims(proto):
    return any(proto.HasField(f) for f in _LEGACY)


def proto_shape(proto):
    """The shape a BlobProto declares, as a tuple."""
    if proto.HasField("shape"):
        return tuple(int(d) for d in proto.shape.dim)
    if has_legacy_dims(proto):
        return tuple(int(getattr(proto, f)) for f in _LEGACY)
    n = max(len(proto.data), len(proto.double_data))
    return (n,) if n else ()


def shape_matches(shape, proto):
    """Caffe's Blob::ShapeEquals(proto): N-D exact, legacy 4-D from the end."""
    shape = tuple(shape)
    if has_legacy_dims(proto) and not proto.HasField("shape"):
        if len(shape) > 4:
            return False
        padded = (1,) * (4 - len(shape)) + shape
        return padded == tuple(int(getattr(proto, f)) for f in _LEGACY)
    return shape == proto_shape(proto)


def _values(proto, diff, shape):
    doubles = proto.double_diff if diff else proto.double_data
    floats = proto.diff if diff else proto.data
    if len(doubles):
        values = np.asarray(doubles, np.float64)
    else:
        values = np.asarray(floats, np.float32)
    count = int(np.prod(shape, dtype=np.int64))
    if values.size != count:
        if diff and values.size == 0:
            return np.zeros(shape, np.float32)
        raise ValueError("BlobProto has %d %s values but its shape %s needs %d"
                         % (values.size, "diff" if diff else "data", shape, count))
    return values.reshape(shape)


def array_from_proto(proto, diff=False, shape=None):
    """The values of a BlobProto as a NumPy array of its declared shape
    (or of ``shape``, which must have the same count)."""
    declared = proto_shape(proto)
    values = _values(proto, diff, declared)
    return values.reshape(shape) if shape is not None else values


def blob_from_proto(proto, dtype=None):
    """A new Blob with a BlobProto's shape, data and (if present) diff."""
    data = array_from_proto(proto)
    blob = Blob(data.shape, dtype=dtype, xp=np)
    blob.data[...] = data
    if len(proto.diff) or len(proto.double_diff):
        blob.diff[...] = array_from_proto(proto, diff=True)
    blob.to(backend.array_module())
    return blob


def array_to_proto(array, diff=None, proto=None):
    """A BlobProto (N-D ``shape``, float values) holding ``array`` (and ``diff``)."""
    proto = proto or caffe_pb2.BlobProto()
    array = backend.to_numpy(array)
    proto.shape.dim.extend(int(d) for d in array.shape)
    if array.dtype == np.float64:
        proto.double_data.extend(array.ravel().tolist())
    else:
        proto.data.extend(array.astype(np.float32, copy=False).ravel().tolist())
    if diff is not None:
        diff = backend.to_numpy(diff)
        if array.dtype == np.float64:
            proto.double_diff.extend(diff.ravel().tolist())
        else:
            proto.diff.extend(diff.astype(np.float32, copy=False).ravel().tolist())
    return proto


def blob_to_proto(blob, write_diff=False, proto=None):
    """Blob::ToProto: shape, float data and optionally the diff."""
    return array_to_proto(blob.data, blob.diff if write_diff else None, proto)
