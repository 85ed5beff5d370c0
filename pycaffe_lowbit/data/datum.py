"""Datum, Caffe's record for one image and its label.

A raw Datum holds ``channels x height x width`` uint8 pixels in ``data`` (C, H, W
order, BGR for colour images) or the same count of floats in ``float_data``.
An encoded Datum (``encoded: true``) holds the bytes of a JPEG/PNG file in
``data`` and no shape; decoding gives BGR pixels, as OpenCV reads them.
"""
import numpy as np
from google.protobuf.message import DecodeError

from ..core import backend
from ..proto import caffe_pb2
from ..core.lazy import lazy_module
from ..formats.wire import read_varint

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)


class DataError(ValueError):
    """Bad data: the message names the database or file and the record."""


def array_to_datum(array, label=0):
    """A raw Datum from a (C, H, W) array: uint8 goes to ``data``, anything
    else to ``float_data``. (H, W) is taken as one channel; a device array is
    copied to the host first."""
    array = np.asarray(backend.to_numpy(array))
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError("a Datum holds a (C, H, W) array, got shape %s" % (array.shape,))
    datum = caffe_pb2.Datum(channels=array.shape[0], height=array.shape[1],
                            width=array.shape[2], label=int(label))
    if array.dtype == np.uint8:
        datum.data = array.tobytes()
    else:
        datum.float_data.extend(array.astype(np.float32).ravel().tolist())
    return datum


def encoded_datum(file_bytes, label=0):
    """An encoded Datum holding an image file's bytes."""
    return caffe_pb2.Datum(data=bytes(file_bytes), label=int(label), encoded=True)


def parse_datum(value, where="record"):
    """Parse serialized Datum bytes; ``where`` names the record in errors."""
    datum = caffe_pb2.Datum()
    try:
        datum.ParseFromString(value if isinstance(value, bytes) else bytes(value))
    except DecodeError:
        raise DataError("%s is not a Datum (a caffe.Datum protobuf was expected)"
                        % where) from None
    return datum


class DatumView:
    """A Datum's fields read straight from its serialized bytes, without
    copying the pixels: ``data`` is a memoryview of the record (valid as long
    as the record's buffer is), ``float_data`` a float32 array. The same
    attributes as caffe_pb2.Datum, for the fields Caffe's readers use."""
    __slots__ = ("channels", "height", "width", "data", "label", "float_data", "encoded")

    def __init__(self):
        self.channels = self.height = self.width = self.label = 0
        self.data = b""
        self.float_data = ()
        self.encoded = False


class _Unusual(Exception):
    """A field the fast reader leaves to protobuf (unknown, or a bad wire type)."""


# field number -> attribute, for the varint fields (int32, and encoded: bool)
_VARINT_FIELDS = {1: "channels", 2: "height", 3: "width", 5: "label", 7: "encoded"}


def _fields(view):
    """DatumView of the wire-format bytes in memoryview ``view`` (protobuf's
    rules: the last value of a field wins, float_data appends, packed or not)."""
    datum, floats, pos, end = DatumView(), [], 0, len(view)
    while pos < end:
        tag, pos = read_varint(view, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0 and number in _VARINT_FIELDS:
            value, pos = read_varint(view, pos)
            if number == 7:
                datum.encoded = value != 0
            else:                       # int32: the low 32 bits, signed
                value &= 0xFFFFFFFF
                setattr(datum, _VARINT_FIELDS[number], value - (1 << 32) if value >> 31 else value)
        elif wire == 2 and number in (4, 6):
            size, pos = read_varint(view, pos)
            if pos + size > end or (number == 6 and size % 4):
                raise _Unusual
            if number == 4:
                datum.data = view[pos:pos + size]
            else:
                floats.append(np.frombuffer(view[pos:pos + size], "<f4"))
            pos += size
        elif wire == 5 and number == 6:
            if pos + 4 > end:
                raise _Unusual
            floats.append(np.frombuffer(view[pos:pos + 4], "<f4"))
            pos += 4
        else:
            raise _Unusual
    if floats:
        datum.float_data = np.concatenate(floats).astype(np.float32)
    return datum


def read_datum(value, where="record"):
    """The Datum in serialized bytes (bytes or a buffer such as LMDB's
    memoryview), read without copying its pixels: a DatumView. Records with
    fields the fast reader does not know go through protobuf (same values);
    bytes that are not a Datum raise DataError naming ``where``."""
    view = memoryview(value)
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    try:
        return _fields(view)
    except (_Unusual, IndexError, ValueError):
        return parse_datum(view, where)


def decode_image(file_bytes, color=True, where="image"):
    """Decode JPEG/PNG bytes to a (C, H, W) uint8 array, BGR when ``color``."""
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    image = cv2.imdecode(np.frombuffer(file_bytes, np.uint8), flag)
    if image is None:
        raise DataError("%s: could not decode the encoded image" % where)
    return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)


def datum_to_array(datum, force_color=False, force_gray=False, where="record"):
    """The Datum's pixels as a (C, H, W) array: uint8 for ``data`` and encoded
    images, float32 for ``float_data``. An encoded image decodes in colour
    unless ``force_gray``; it keeps its own channel count unless forced
    (Caffe's DecodeDatumToCVMatNative / DecodeDatumToCVMat)."""
    if datum.encoded:
        if force_color and force_gray:
            raise DataError("force_color and force_gray cannot both be set")
        if force_gray:
            return decode_image(datum.data, color=False, where=where)
        if force_color:
            return decode_image(datum.data, color=True, where=where)
        image = cv2.imdecode(np.frombuffer(datum.data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise DataError("%s: could not decode the encoded image" % where)
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    shape = (datum.channels, datum.height, datum.width)
    count = int(np.prod(shape))
    if len(datum.data):
        if len(datum.data) != count:
            raise DataError("%s: Datum data has %d bytes, but channels x height x width "
                            "= %d x %d x %d = %d" % ((where, len(datum.data)) + shape + (count,)))
        return np.frombuffer(datum.data, np.uint8).reshape(shape)
    if len(datum.float_data) != count:
        raise DataError("%s: Datum float_data has %d values, but channels x height x width "
                        "= %d x %d x %d = %d" % ((where, len(datum.float_data)) + shape + (count,)))
    return np.asarray(datum.float_data, np.float32).reshape(shape)
