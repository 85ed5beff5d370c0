"""BlobProto <-> arrays and Blobs.

A BlobProto carries its shape either as ``shape.dim`` (N-D) or in the legacy
4-D fields ``num, channels, height, width``, and its values in ``data``/``diff``
(float) or ``double_data``/``double_diff``.

Caffe compares a legacy 4-D proto with an N-D blob by indexing the blob's
shape from the end (a bias of shape (N,) matches 1x1x1xN, an InnerProduct weight
(M, K) matches 1x1xMxK); ``shape_matches`` does the same.
"""
import numpy as np

from ..core import backend
from ..core.blob import Blob
from ..proto import caffe_pb2
from .wire import encode_varint, read_varint

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


# Packed value fields: name -> (field number, little-endian dtype).
_PACKED = {"data": (5, "<f4"), "diff": (6, "<f4"),
           "double_data": (8, "<f8"), "double_diff": (9, "<f8")}
# Below this many values, Python floats are cheap enough.
_FAST_MIN = 4096


def _field_array(proto, name):
    """A repeated float/double field of a BlobProto as a new NumPy array,
    without a Python float per value where the runtime allows: upb's
    containers convert natively (``__array__``); otherwise large fields are
    read from the packed wire bytes."""
    values = getattr(proto, name)
    dtype = np.dtype(_PACKED[name][1]).newbyteorder("=")
    if len(values) < _FAST_MIN or hasattr(values, "__array__"):
        return np.asarray(values, dtype)
    return _wire_array(proto, name)


def _wire_array(proto, name):
    """Field ``name`` read from the proto's serialized bytes, where a packed
    field is one tag, a varint length and the raw little-endian values."""
    number, wire_dtype = _PACKED[name]
    wire_dtype = np.dtype(wire_dtype)
    native = wire_dtype.newbyteorder("=")
    buf = proto.SerializeToString()
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        wire = key & 7
        if wire == 0:
            _, pos = read_varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            if key >> 3 == number:
                return np.frombuffer(buf, wire_dtype, size // wire_dtype.itemsize,
                                     pos).astype(native)
            pos += size
        else:
            break
    return np.asarray(getattr(proto, name), native)  # not found packed


def _append_values(proto, name, array):
    """Append ``array``'s values to repeated field ``name`` without going
    through Python floats: the packed field's bytes are built from the array's
    memory and merged in."""
    number, dtype = _PACKED[name]
    flat = np.ascontiguousarray(array, dtype).reshape(-1)
    if flat.size < _FAST_MIN:
        getattr(proto, name).extend(flat.tolist())
        return
    head = encode_varint(number << 3 | 2) + encode_varint(flat.nbytes)
    buf = bytearray(len(head) + flat.nbytes)
    buf[:len(head)] = head
    np.frombuffer(buf, dtype, flat.size, len(head))[...] = flat
    proto.MergeFromString(memoryview(buf))


def _values(proto, diff, shape):
    if len(proto.double_diff if diff else proto.double_data):
        values = _field_array(proto, "double_diff" if diff else "double_data")
    else:
        values = _field_array(proto, "diff" if diff else "data")
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


def blob_array(proto, diff=False):
    """The values (or diff) of a BlobProto as a NumPy array of its declared
    shape: float32, or float64 for double_data. Fast for large blobs."""
    return array_from_proto(proto, diff)


def array_to_proto(array, diff=None, proto=None, with_shape=True):
    """A BlobProto (N-D ``shape`` unless ``with_shape`` is False, float values)
    holding ``array`` (and ``diff``); float64 arrays go to double_data."""
    proto = caffe_pb2.BlobProto() if proto is None else proto
    array = backend.to_numpy(array)
    double = array.dtype == np.float64
    if with_shape:
        proto.shape.dim.extend(int(d) for d in array.shape)
    _append_values(proto, "double_data" if double else "data", array)
    if diff is not None:
        _append_values(proto, "double_diff" if double else "diff", backend.to_numpy(diff))
    return proto


def blob_to_proto(blob, write_diff=False, proto=None):
    """Blob::ToProto: shape, float data and optionally the diff."""
    return array_to_proto(blob.data, blob.diff if write_diff else None, proto)
