"""The base of Caffe's prefetching data layers (Data, ImageData, WindowData).

No bottoms; top 0 is the data, top 1 (optional) the labels. ``layer_setup``
gives the layer its own random generator (seeded from the library's, so
``set_random_seed`` and the solver's ``random_seed`` make runs repeatable) and
its DataTransformer, asks the subclass for a reader (an object whose
``load_batch()`` returns (data float32 (N, C, H, W), labels float32 (N,))) and
the first batch's shape, shapes the tops and starts prefetching
``data_param.prefetch`` batches ahead (Caffe's BasePrefetchingDataLayer).
``forward`` takes the next batch, reshapes the tops to it (each batch is
shaped by its first image, as in Caffe) and copies it in, to the device in GPU
mode. On the CPU the top takes the batch's array itself, as Caffe's
``set_cpu_data`` does (no copy; an array held from ``blob.data`` before a
forward keeps the old batch, as pycaffe's does), and the array goes back to the
reader (``BatchBuffers``) at the next forward, to be refilled: no batch-sized
allocation or copy per batch.

Workers (``data/workers.py``): a subclass whose ``workers_field()`` names a
count (data_param.workers, image_data_param.workers) gets ``self.pool``, the
threads its reader decodes and transforms a batch with; the random draws are
made before, in record order, so the batches are those of one worker. Bad data (a DataError, raised in the loader thread) comes out of
``forward`` as the layer's error, with the loader's message. No backward.
"""
import logging

import numpy as np

from ..core import backend
from ..data.datum import DataError
from ..data.prefetch import Prefetcher
from ..data.transformer import DataTransformer
from ..data.workers import WorkerPool, resolve
from .. import kernels
from ._data_device import CropBatch, DeviceFeed, pinned_empty
from .base import Layer

log = logging.getLogger("pycaffe_lowbit")


class PrefetchingDataLayer(Layer):
    exact_num_bottom = 0
    min_num_top = 1
    max_num_top = 2

    def layer_setup(self, bottom, top):
        self.output_labels = len(top) > 1
        self.rng = np.random.default_rng(int(backend.rng().integers(1 << 63)))
        try:
            self.transformer = DataTransformer(self.param.transform_param, self.phase,
                                               self.rng)
            self.pool = WorkerPool(resolve(self.workers_field()), name="data-%s" % self.name)
            if self.pool.count > 1:
                log.info("Decoding and transforming with %d workers", self.pool.count)
            self.reader, shape = self.data_setup()
        except DataError as exc:
            raise self.error(str(exc)) from None
        top[0].reshape(shape)
        if self.output_labels:
            top[1].reshape(shape[:1])
        log.info("output data size: %s", ",".join(str(d) for d in shape))
        self.feed = None
        self._in_top = None
        if kernels.active(top[0].data) and hasattr(self.reader, "crops"):
            # the GPU path: uint8 crops to the device, the transform there
            self.feed = DeviceFeed(self.transformer)
            self.reader.crops = True
            if not isinstance(top[0].data, np.ndarray):
                self.reader.buffers.allocator = pinned_empty
        buffers = getattr(self.reader, "buffers", None)
        if buffers is not None and not self.feed:
            # every batch array in flight: the queue, the one being built, the top's
            buffers.reserve(shape, np.float32, self.param.data_param.prefetch + 2)
        self.prefetcher = Prefetcher(self.reader.load_batch, self.param.data_param.prefetch,
                                     name="prefetch-%s" % self.name)

    def data_setup(self):
        """Open the source; return (reader, shape of the first batch)."""
        raise NotImplementedError

    def workers_field(self):
        """The layer's worker count field (0: the default); 1 without one."""
        return 1

    def check_batch_size(self, batch_size):
        if batch_size <= 0:
            raise DataError("batch_size must be positive (got %d)" % batch_size)
        return batch_size

    def reshape(self, bottom, top):
        """Each batch shapes the tops in ``forward``."""

    def forward(self, bottom, top):
        try:
            data, labels = self.prefetcher.next()
        except DataError as exc:        # bad data: a message for the user, no traceback
            raise self.error(str(exc)) from None
        buffers = getattr(self.reader, "buffers", None)
        if buffers is not None and self._in_top is not None:
            buffers.give(self._in_top)  # the previous batch: the reader may refill it
        self._in_top = None
        top[0].reshape(data.shape)
        if isinstance(data, CropBatch):
            self.feed.apply(data, top[0].data)
            self._in_top = data.crops
            ahead = self.prefetcher.peek() if self.feed.on_device(top[0].data) else None
            if ahead is not None and isinstance(ahead[0], CropBatch):
                self.feed.upload(ahead[0])      # batch k + 1's copy overlaps iteration k
        elif isinstance(top[0].data, np.ndarray) and top[0].dtype == data.dtype:
            # Caffe's set_cpu_data: the top takes the batch's memory, no copy; the
            # batch's array goes back to the reader at the next forward
            top[0].data = data
            self._in_top = data
        else:
            top[0].set_values(data)
            self._in_top = data
        if self.output_labels:
            top[1].reshape(labels.shape)
            top[1].set_values(labels)

    def backward(self, top, propagate_down, bottom):
        """No bottoms."""


def checked_shape(transformer, shape, name):
    """``transformer.output_shape(shape)``, errors prefixed by ``name``."""
    try:
        return transformer.output_shape(shape)
    except DataError as exc:
        raise DataError("%s: %s" % (name, exc)) from None


class BatchBuffers:
    """Batch arrays for reuse: ``take(shape, dtype)`` gives a free one of that
    shape and dtype (or a new one, from ``allocator``: pinned memory on the
    GPU path), ``give(array)`` returns one the net is done with. Arrays never
    given back (a caller of ``load_batch`` keeping its batches) are simply
    not reused."""
    KEEP = 2

    def __init__(self):
        self._free = []
        self.allocator = np.empty

    def take(self, shape, dtype=np.float32):
        shape, dtype = tuple(shape), np.dtype(dtype)
        for i, array in enumerate(self._free):
            if array.shape == shape and array.dtype == dtype:
                return self._free.pop(i)
        self._free = []           # arrays of an earlier shape: the batches changed shape
        return self.allocator(shape, dtype)

    def reserve(self, shape, dtype, count):
        """``count`` arrays of ``shape``, allocated and written now (their pages
        faulted in at setup, as Caffe's prefetch batches are, not during the
        first timed iterations), ready for ``take``."""
        for _ in range(count):
            array = self.allocator(tuple(shape), np.dtype(dtype))
            array.fill(0)
            self._free.append(array)

    def give(self, array):
        if isinstance(array, np.ndarray) and len(self._free) < self.KEEP:
            self._free.append(array)


def transform_batch(transformer, images, name, resize_hint, pool=None, buffers=None,
                    crops=False):
    """The transformed batch of (C, H, W) ``images``; ``name(i)`` names image
    i in errors. The first image sets the size: without a crop every image
    must have it, with a crop the same channel count and at least the crop.
    ``pool`` transforms the images in its workers, into an array of
    ``buffers`` when given. ``crops`` (the GPU path): a CropBatch when the
    images are uint8, the device applying mirror, mean and scale."""
    first = images[0].shape
    out_shape = (len(images),) + checked_shape(transformer, first, name(0))
    for i, image in enumerate(images):
        if image.shape == first:
            continue
        if not transformer.crop or image.shape[0] != first[0]:
            raise DataError(
                "%s: image is %s but %s, the first of its batch, is %s; every image of "
                "a batch must have the same size%s"
                % (name(i), _chw(image.shape), name(0), _chw(first),
                   "" if transformer.crop else " (set transform_param.crop_size, or %s)"
                   % resize_hint))
        checked_shape(transformer, image.shape, name(i))
    if crops and all(image.dtype == np.uint8 for image in images):
        out = buffers.take(out_shape, np.uint8) if buffers is not None else None
        return CropBatch(*transformer.crops(images, out=out, pool=pool))
    out = buffers.take(out_shape) if buffers is not None else None
    return transformer.transform(images, out=out, pool=pool)


def _chw(shape):
    return "x".join(str(d) for d in shape) + " (C x H x W)"
