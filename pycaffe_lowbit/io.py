"""pycaffe's ``caffe.io``: proto/array conversion, the input Transformer, image IO.

Same names, arguments and results as BVLC's python/caffe/io.py, so
``caffe.io.load_image``, ``caffe.io.Transformer`` ... work unchanged with
``import pycaffe_lowbit as caffe``. Images are read and resized with OpenCV
(imported on first use) instead of scikit-image; the differences are stated
on ``load_image`` and ``resize_image``.

Caffe's file formats themselves (prototxt, ``.caffemodel``, BlobProto, HDF5)
are ``pycaffe_lowbit.formats``; the names ``pycaffe_lowbit.io.text``,
``.caffemodel``, ``.blobproto``, ``.hdf5``, ``.upgrade`` and ``.weights`` of
earlier releases still import them (``pycaffe_lowbit/_legacy_paths.py``).
"""
import errno
import os

import numpy as np

from .core import backend
from .proto import caffe_pb2
from .formats import blobproto as _bp

# OpenCV's Python binding passes at most this many channels to cv2.resize.
_CV_MAX_CHANNELS = 128
# skimage.color.rgb2gray's luminance weights (ITU-R BT.709), used by pycaffe's
# load_image(color=False) through skimage.io.imread(as_gray=True).
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], np.float64)


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("caffe.io image functions need OpenCV: "
                          "pip install opencv-python-headless") from exc
    return cv2


# -- proto / datum / ndarray conversion ---------------------------------------

def blobproto_to_array(blob, return_diff=False):
    """The data (or, with ``return_diff``, the diff) of a BlobProto as a float64
    array: legacy 4-D ``num x channels x height x width`` when any of those
    fields is set, else the N-D ``shape``."""
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = tuple(blob.shape.dim)
    return np.array(_bp._values(blob, return_diff, shape), dtype=np.float64)


def array_to_blobproto(arr, diff=None):
    """A BlobProto holding an N-D array (``shape.dim``; float ``data``) and,
    when given, ``diff`` of the same shape (not checked, as in pycaffe). Device
    (CuPy) arrays, a GPU-mode blob's, are copied to the host first."""
    arr = np.asarray(backend.to_numpy(arr))
    return _bp.array_to_proto(arr.astype(np.float32),
                              None if diff is None
                              else np.asarray(backend.to_numpy(diff), np.float32))


def arraylist_to_blobprotovector_str(arraylist):
    """A list of arrays as a serialized BlobProtoVector."""
    vec = caffe_pb2.BlobProtoVector()
    vec.blobs.extend([array_to_blobproto(arr) for arr in arraylist])
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(str):  # noqa: A002 - pycaffe's name
    """A serialized BlobProtoVector as a list of arrays."""
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(str)
    return [blobproto_to_array(blob) for blob in vec.blobs]


def array_to_datum(arr, label=None):
    """A Datum from a ``channels x height x width`` array: uint8 arrays go to
    the ``data`` bytes, others to ``float_data``; ``label`` is set when given
    (a device array is copied to the host first)."""
    arr = np.asarray(backend.to_numpy(arr))
    if arr.ndim != 3:
        raise ValueError('Incorrect array shape.')
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = (int(d) for d in arr.shape)
    if arr.dtype == np.uint8:
        datum.data = np.ascontiguousarray(arr).tobytes()
    else:
        datum.float_data.extend(arr.astype(float).flat)
    if label is not None:
        datum.label = label
    return datum


def datum_to_array(datum):
    """A Datum's values as a ``channels x height x width`` array: uint8 from
    ``data``, float64 from ``float_data``. The label is not returned.

    Beyond pycaffe: an ``encoded`` Datum (a PNG/JPEG in ``data``) is decoded
    as Caffe's DecodeDatumNative does, giving uint8 in OpenCV's BGR order."""
    if datum.encoded:
        cv2 = _cv2()
        img = cv2.imdecode(np.frombuffer(datum.data, np.uint8), cv2.IMREAD_ANYCOLOR)
        if img is None:
            raise ValueError("Datum is marked encoded but its data could not be decoded")
        return (img[np.newaxis] if img.ndim == 2 else img.transpose(2, 0, 1)).copy()
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape).copy()
    return np.array(datum.float_data).astype(float).reshape(shape)


# -- pre-processing -----------------------------------------------------------

class Transformer:
    """Transform input for feeding into a Net (pycaffe's ``caffe.io.Transformer``).

    ``inputs``: dict input name -> blob shape, e.g.
    ``{'data': net.blobs['data'].data.shape}``.

    ``preprocess(name, image)`` takes an ``H' x W' x K`` image and does, in
    this order: convert to float32, resize to the blob's ``H x W``, transpose,
    swap channels, multiply by raw_scale, subtract the mean, multiply by
    input_scale. ``deprocess`` undoes these (except the resize).
    Unlike pycaffe, ``preprocess`` never modifies the caller's array.
    """

    def __init__(self, inputs):
        self.inputs = {k: tuple(int(d) for d in v) for k, v in inputs.items()}
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def __check_input(self, in_):
        if in_ not in self.inputs:
            raise ValueError('{} is not one of the net inputs: {}'.format(in_, self.inputs))

    def preprocess(self, in_, data):
        """Format ``data`` (``H' x W' x K``) for input ``in_``: gives ``K x H x W``."""
        self.__check_input(in_)
        caffe_in = np.array(data, dtype=np.float32)  # a copy: the ops below are in place
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        in_dims = self.inputs[in_][2:]
        if caffe_in.shape[:2] != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        if transpose is not None:
            caffe_in = caffe_in.transpose(transpose)
        if channel_swap is not None:
            caffe_in = caffe_in[list(channel_swap), :, :]
        if raw_scale is not None:
            caffe_in *= raw_scale
        if mean is not None:
            caffe_in -= mean
        if input_scale is not None:
            caffe_in *= input_scale
        return caffe_in

    def deprocess(self, in_, data):
        """Invert ``preprocess`` (scales, mean, channel swap and transpose)."""
        self.__check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if input_scale is not None:
            decaf_in /= input_scale
        if mean is not None:
            decaf_in += mean
        if raw_scale is not None:
            decaf_in /= raw_scale
        if channel_swap is not None:
            decaf_in = decaf_in[np.argsort(channel_swap), :, :]
        if transpose is not None:
            decaf_in = decaf_in.transpose(np.argsort(transpose))
        return decaf_in

    def set_transpose(self, in_, order):
        """The order to transpose the input's dimensions, e.g. (2, 0, 1) for HWC -> CHW."""
        self.__check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError('Transpose order needs to have the same number of '
                             'dimensions as the input.')
        self.transpose[in_] = order

    def set_channel_swap(self, in_, order):
        """The order to take the channels in (after transpose): (2, 1, 0) maps RGB to BGR."""
        self.__check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError('Channel swap needs to have the same number of '
                             'dimensions as the input channels.')
        self.channel_swap[in_] = order

    def set_raw_scale(self, in_, scale):
        """Scale applied before the mean: 255 for models trained on [0, 255] images."""
        self.__check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """The mean to subtract: per channel (shape ``(K,)``) or elementwise
        (``K x H x W``, or ``H x W`` for one channel)."""
        self.__check_input(in_)
        mean = np.asarray(mean)
        ms = mean.shape
        if mean.ndim == 1:
            if ms[0] != self.inputs[in_][1]:
                raise ValueError('Mean channels incompatible with input.')
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            if len(ms) == 2:
                ms = (1,) + ms
            if len(ms) != 3:
                raise ValueError('Mean shape invalid')
            if ms != self.inputs[in_][1:]:
                raise ValueError('Mean shape incompatible with input shape.')
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Scale applied after mean subtraction (raw_scale is applied before)."""
        self.__check_input(in_)
        self.input_scale[in_] = scale


# -- image IO -----------------------------------------------------------------

def _as_float(img):
    """skimage.img_as_float for the dtypes image files give."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535
    return img.astype(np.float32)


def load_image(filename, color=True):
    """Load an image as float32 in [0, 1], ``H x W x 3`` in RGB order, or
    ``H x W x 1`` for a grayscale file with ``color=False``.

    A grayscale file with ``color=True`` is tiled to 3 channels; an alpha
    channel is dropped. A colour file with ``color=False`` becomes intensity
    with skimage's rgb2gray weights (0.2125 R + 0.7154 G + 0.0721 B), as
    pycaffe's ``imread(as_gray=True)`` gives. Read with OpenCV, so: 8- and
    16-bit files are scaled by 255 and 65535; EXIF orientation is not applied.
    """
    cv2 = _cv2()
    if not os.path.exists(filename):   # pycaffe's skimage.io.imread: FileNotFoundError
        raise FileNotFoundError(errno.ENOENT, "no such image file", str(filename))
    img = cv2.imread(str(filename), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise IOError("cannot read image file %s (missing, or not an image OpenCV "
                      "can decode)" % filename)
    if img.ndim == 3 and img.shape[2] == 2:  # gray + alpha
        img = img[:, :, 0]
    img = _as_float(img)
    if img.ndim == 3:
        img = img[:, :, 2::-1]  # BGR(A) -> RGB, alpha dropped
        if not color:
            img = (img @ _GRAY_WEIGHTS.astype(np.float32))[:, :, np.newaxis]
        return np.ascontiguousarray(img)
    img = img[:, :, np.newaxis]
    if color:
        img = np.tile(img, (1, 1, 3))
    return img


_INTERP = {0: "INTER_NEAREST", 1: "INTER_LINEAR", 2: "INTER_CUBIC", 3: "INTER_CUBIC",
           4: "INTER_LANCZOS4", 5: "INTER_LANCZOS4"}


def resize_image(im, new_dims, interp_order=1):
    """Resize an ``H x W x K`` image to ``new_dims = (height, width)``: gives
    float32 ``height x width x K`` (any K; a 2-D image stays 2-D).

    ``interp_order`` as skimage's spline order: 0 nearest, 1 bilinear
    (default), 2-3 bicubic, 4-5 Lanczos. Differences from pycaffe's
    skimage/scipy version: OpenCV interpolates in the image's own value range
    (pycaffe rescales to [0, 1] and back, which gives the same values); no
    Gaussian anti-aliasing when shrinking; orders 2-5 are clipped to the
    input's [min, max] as skimage's ``clip=True`` does. A constant image gives
    a constant image, as in pycaffe.
    """
    cv2 = _cv2()
    im = np.asarray(im)
    new_h, new_w = (int(d) for d in new_dims)
    if interp_order not in _INTERP:
        raise ValueError("interp_order must be 0 to 5, got %r" % (interp_order,))
    im_min, im_max = (im.min(), im.max()) if im.size else (0, 0)
    if im_max == im_min:
        return np.full((new_h, new_w) + im.shape[2:], im_min, dtype=np.float32)
    src = im.astype(np.float32)
    flag = getattr(cv2, _INTERP[interp_order])
    if src.ndim == 2:
        out = cv2.resize(src, (new_w, new_h), interpolation=flag)
    else:
        flat = src.reshape(src.shape[:2] + (-1,))
        parts = [cv2.resize(np.ascontiguousarray(flat[:, :, c:c + _CV_MAX_CHANNELS]),
                            (new_w, new_h),
                            interpolation=flag)
                 for c in range(0, flat.shape[2], _CV_MAX_CHANNELS)]
        parts = [p.reshape(new_h, new_w, -1) for p in parts]  # cv2 drops a last axis of 1
        out = np.concatenate(parts, axis=2).reshape((new_h, new_w) + src.shape[2:])
    if interp_order > 1:
        out = np.clip(out, im_min, im_max)
    return out.astype(np.float32, copy=False)


def oversample(images, crop_dims):
    """Crop each ``H x W x K`` image at its four corners and center, then the
    same five crops mirrored left-right: gives float32
    ``(10 * N) x crop_h x crop_w x K``, per image the corners (top-left,
    top-right, bottom-left, bottom-right), the center, then their mirrors."""
    images = np.asarray(images)
    h, w = images.shape[1:3]
    ch, cw = (int(d) for d in crop_dims)
    if ch > h or cw > w:
        raise ValueError("crop %dx%d is larger than the images (%dx%d)" % (ch, cw, h, w))
    starts = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw),
              (int(h / 2.0 - ch / 2.0), int(w / 2.0 - cw / 2.0))]
    crops = np.stack([images[:, i:i + ch, j:j + cw] for i, j in starts], axis=1)
    crops = np.concatenate([crops, crops[:, :, :, ::-1]], axis=1)
    return crops.reshape((-1, ch, cw) + images.shape[3:]).astype(np.float32)
