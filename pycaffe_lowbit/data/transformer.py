"""Caffe's DataTransformer: crop, mirror, mean subtraction and scaling of a batch.

For an image ``x`` of shape (C, H, W) (uint8 pixels or float_data), crop size
``k`` (0: no crop, the output is H x W) and offsets (h0, w0):

    y[c, i, j] = (x[c, h0 + i, w0 + j'] - m[c, h0 + i, w0 + j']) * scale
    j' = j, or k - 1 - j when the image is mirrored

computed in float32 as Caffe does (the difference is rounded to float32, then
the product). The mean ``m`` is the ``mean_file`` BlobProto (C x H x W, cropped
at the same offsets, so mirroring flips the mean-subtracted crop) or the
``mean_value`` list (one value, or one per channel), or 0.

Random draws, per image in batch order (as Caffe's Transform): the flip, when
``mirror`` (a fair coin); then the crop offsets, in TRAIN with a crop
(h0 uniform on 0..H-k, w0 on 0..W-k). In TEST the crop is centred:
h0 = (H - k) // 2, w0 = (W - k) // 2. They come from the generator given to the
transformer (a layer's own, seeded from the library's random seed).

``force_color`` / ``force_gray`` decode encoded Datums in colour / grayscale;
otherwise an encoded image keeps its own channel count.
"""
import logging
import os
import threading

import numpy as np

from ..core.lazy import lazy_module
from ..cpu import jit, transform as cpu_transform
from ..proto import caffe_pb2
from . import sources
from .datum import DataError, datum_to_array

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")


class DataTransformer:
    """The transform_param of one layer, applied in ``phase`` with random
    draws from ``rng`` (a numpy Generator)."""

    def __init__(self, param, phase, rng=None):
        self.scale = np.float32(param.scale)
        self.crop = int(param.crop_size)
        self.mirror = bool(param.mirror)
        self.train = phase == caffe_pb2.TRAIN
        self.force_color = bool(param.force_color)
        self.force_gray = bool(param.force_gray)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mean = None
        self.mean_values = np.asarray(param.mean_value, np.float32)
        self._warned_force = False
        self._scratch = threading.local()
        self._channel_means = {}      # C -> the mean values as (C,) float32, for the kernel
        if param.HasField("mean_file"):
            if len(param.mean_value):
                raise DataError("transform_param: cannot specify mean_file and mean_value "
                                "at the same time")
            self.mean = _read_mean(param.mean_file)
        if self.force_color and self.force_gray:
            raise DataError("transform_param: cannot set both force_color and force_gray")

    # -- decoding ----------------------------------------------------------------
    def decode(self, datum, where="record"):
        """The (C, H, W) pixels of a Datum, decoding encoded images with
        force_color / force_gray (which raw Datums ignore, as in Caffe)."""
        if not datum.encoded and (self.force_color or self.force_gray) \
                and not self._warned_force:
            log.error("force_color and force_gray only for encoded datum")
            self._warned_force = True
        return datum_to_array(datum, self.force_color, self.force_gray, where)

    # -- shapes ------------------------------------------------------------------
    def output_shape(self, image_shape):
        """(C, h, w) of the transformed (C, H, W) image; a DataError when the
        crop or the mean does not fit it."""
        c, h, w = image_shape
        if min(image_shape) <= 0:
            raise DataError("empty image (C x H x W = %dx%dx%d): a Datum with pixels "
                            "was expected" % (c, h, w))
        if self.crop and (h < self.crop or w < self.crop):
            raise DataError("image of %dx%d is smaller than crop_size %d"
                            % (h, w, self.crop))
        if self.mean is not None and self.mean.shape != tuple(image_shape):
            raise DataError("the mean file is %s (C x H x W) but the image is %s"
                            % ("x".join(map(str, self.mean.shape)),
                               "x".join(map(str, image_shape))))
        if len(self.mean_values) not in (0, 1, c):
            raise DataError("specify either 1 mean_value or as many as channels: %d "
                            "values for %d channels" % (len(self.mean_values), c))
        return (c, self.crop or h, self.crop or w)

    # -- random draws --------------------------------------------------------------
    def draw(self, heights, widths):
        """(h_off, w_off, mirror) int arrays, one entry per image of the
        given heights and widths, drawn in Caffe's order."""
        heights, widths = np.asarray(heights), np.asarray(widths)
        n = len(heights)
        flip = (self.rng.integers(0, 2, n) if self.mirror else np.zeros(n, np.int64))
        if not self.crop:
            return np.zeros(n, np.int64), np.zeros(n, np.int64), flip
        if self.train:
            return (self.rng.integers(0, heights - self.crop + 1),
                    self.rng.integers(0, widths - self.crop + 1), flip)
        return (heights - self.crop) // 2, (widths - self.crop) // 2, flip

    # -- the transform -------------------------------------------------------------
    def transform(self, images, draws=None, out=None, pool=None):
        """float32 (N, C, h, w) from N (C, H, W) images (shapes checked with
        ``output_shape``). ``draws`` = (h_off, w_off, mirror) replaces the
        random draws (tests inject Caffe's recovered crops this way); ``out``
        is a float32 (N, C, h, w) array to write into (else a new one);
        ``pool`` (a data.workers.WorkerPool) spreads the images over its
        workers. The draws are made here, before any worker starts, so the
        result is the same for any pool."""
        (h_off, w_off, flip), shape = self._prepare(images, draws)
        out = np.empty(shape, np.float32) if out is None else out

        def one(i):
            self.transform_into(out[i], images[i], h_off[i], w_off[i], flip[i])
        _each(one, len(images), pool)
        return out

    def crops(self, images, draws=None, out=None, pool=None):
        """The GPU path's half of ``transform``: (crops, flip, offsets) with
        crops uint8 (N, C, h, w), unmirrored; flip uint8 (N,); offsets int64
        (N, 2) (h_off, w_off). The same draws as ``transform`` makes; the
        device applies mirror, mean and scale (kernels/data_transform.py)."""
        (h_off, w_off, flip), shape = self._prepare(images, draws)
        out = np.empty(shape, np.uint8) if out is None else out

        def one(i):
            self.crop_into(out[i], images[i], h_off[i], w_off[i])
        _each(one, len(images), pool)
        return out, flip.astype(np.uint8), np.stack([h_off, w_off], axis=1)

    def _prepare(self, images, draws):
        """((h_off, w_off, flip) int64 arrays, output batch shape)."""
        shapes = [tuple(im.shape) for im in images]
        for shape in set(shapes):
            self.output_shape(shape)
        if draws is None:
            draws = self.draw([s[1] for s in shapes], [s[2] for s in shapes])
        draws = tuple(np.asarray(d, np.int64) for d in draws)
        return draws, (len(images),) + self.output_shape(shapes[0])

    def window(self, image_shape, h_off, w_off, flip):
        """(rows, cols): the slices of an image of ``image_shape`` that its
        crop reads, cols reversed when mirrored (views, no copy)."""
        _, height, width = image_shape
        h, w = self.crop or height, self.crop or width
        rows = slice(h_off, h_off + h)
        if flip:
            return rows, slice(w_off + w - 1, w_off - 1 if w_off else None, -1)
        return rows, slice(w_off, w_off + w)

    def transform_into(self, out, image, h_off=0, w_off=0, flip=False):
        """One image into ``out`` (float32 (C, h, w)) in one pass over the
        crop, by the Numba kernel of ``cpu/transform.py`` where it runs
        (bit-equal; ``LOWBIT_NUMBA=0`` takes this reference instead): ``out = (crop(x) - crop(m)) * scale``, the crop a view of the
        image and of the mean file. A mirrored uint8 crop is first flipped
        into a per-thread uint8 scratch by OpenCV (NumPy's reversed-stride
        reads of mixed types are 3 to 4 times slower); the values are the
        same, float32 subtraction then product, in either order of passes."""
        if self._compiled(image, out):
            if self.mean is not None:
                cpu_transform.crop_transform(image, int(h_off), int(w_off), bool(flip),
                                             self.mean, self.scale, out)
            elif flip and image.dtype == np.uint8:   # OpenCV mirrors uint8 rows fastest
                rows, cols = self.window(image.shape, h_off, w_off, False)
                cpu_transform.crop_transform_channels(
                    self._flipped(image[:, rows, cols]), 0, 0, False,
                    self._channel_mean(image.shape[0]), self.scale, out)
            else:
                cpu_transform.crop_transform_channels(
                    image, int(h_off), int(w_off), bool(flip),
                    self._channel_mean(image.shape[0]), self.scale, out)
            return
        rows, cols = self.window(image.shape, h_off, w_off, flip)
        if flip and image.dtype == np.uint8:
            view = self._flipped(image[:, rows, self.window(image.shape, h_off, w_off,
                                                            False)[1]])
        else:
            view = image[:, rows, cols]
        if self.mean is not None:
            np.subtract(view, self.mean[:, rows, cols], out=out)
        elif len(self.mean_values):
            np.subtract(view, self.mean_values.reshape(-1, 1, 1), out=out)
        else:
            np.copyto(out, view)
        if self.scale != 1:
            np.multiply(out, self.scale, out=out)

    @staticmethod
    def _compiled(image, out):
        """The one-pass Numba kernel (cpu/transform.py) takes these arrays."""
        return (isinstance(image, np.ndarray) and image.dtype.kind in "uif"
                and image.ndim == 3 and isinstance(out, np.ndarray)
                and out.dtype == np.float32 and out.flags.c_contiguous and jit.enabled())

    def _channel_mean(self, channels):
        """The mean values (or zeros) as (C,) float32 for the kernel."""
        if channels not in self._channel_means:
            self._channel_means[channels] = cpu_transform.channel_mean(self.mean_values, channels)
        return self._channel_means[channels]

    def _flipped(self, crop):
        """The uint8 (C, h, w) ``crop`` mirrored left-right, in this thread's scratch."""
        scratch = getattr(self._scratch, "array", None)
        if scratch is None or scratch.shape != crop.shape:
            scratch = self._scratch.array = np.empty(crop.shape, np.uint8)
        for c in range(crop.shape[0]):
            cv2.flip(crop[c], 1, dst=scratch[c])
        return scratch

    def crop_into(self, out, image, h_off=0, w_off=0):
        """The uint8 crop of one image into ``out`` (uint8 (C, h, w)), no
        mirror, mean or scale: what the GPU path sends to the device, whose
        kernel (kernels/data_transform.cu) does the rest."""
        rows, cols = self.window(image.shape, h_off, w_off, False)
        np.copyto(out, image[:, rows, cols])


def _each(work, count, pool):
    if pool is None:
        for i in range(count):
            work(i)
    else:
        pool.run(work, count)


def _read_mean(path):
    """The mean BlobProto as a float32 (C, H, W) array."""
    from ..formats.caffemodel import read_blobproto
    if not os.path.exists(path):
        raise DataError("transform_param.mean_file: mean file %s not found"
                        % sources.resolved(path))
    try:
        mean = np.asarray(read_blobproto(path), np.float32)
    except (OSError, ValueError) as exc:
        raise DataError("transform_param.mean_file: %s" % exc) from None
    if mean.ndim > 3:
        if int(np.prod(mean.shape[:-3])) != 1:
            raise DataError("transform_param.mean_file: %s holds %s; one C x H x W mean "
                            "was expected" % (path, mean.shape))
        mean = mean.reshape(mean.shape[-3:])
    while mean.ndim < 3:
        mean = mean[None]
    return mean
