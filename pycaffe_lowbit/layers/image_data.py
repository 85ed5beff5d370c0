"""ImageData: image files named in a list file (Caffe's ImageDataLayer).

image_data_param: ``source``, a text file of ``<path> <label>`` lines (the
label is the integer after the last space, so paths may hold spaces);
``root_folder`` is prepended to every path (a plain string prefix, as in
Caffe); ``new_height``/``new_width`` resize every image (both or neither;
OpenCV's bilinear resize, as Caffe's ReadImageToCVMat); ``is_color`` (BGR, or
one gray channel); ``batch_size`` (default 1); ``shuffle`` (shuffle the list at
setup and again at the end of every pass); ``rand_skip`` (start at line r, r
uniform on 0..rand_skip-1); ``workers`` (ours: threads reading, resizing and
transforming each batch, see data/workers.py; the batches do not depend on it).
Images go through transform_param like Datums.

Tops: data (batch, C, h, w) and label (batch,), float32; each batch is shaped
by its first image, the others must have its size (or at least the crop size,
with a crop).
"""
import logging
import os

import numpy as np

from ..data import sources
from ..data.datum import DataError
from ._data_base import BatchBuffers, PrefetchingDataLayer, checked_shape, transform_batch
from .registry import register
from ..core.lazy import lazy_module

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")


@register("ImageData")
class ImageData(PrefetchingDataLayer):

    def data_setup(self):
        p = self.param.image_data_param
        batch_size = self.check_batch_size(p.batch_size)
        if (p.new_height > 0) != (p.new_width > 0):
            raise DataError("image_data_param: new_height and new_width must be set "
                            "together (got %d and %d)" % (p.new_height, p.new_width))
        log.info("Opening file %s", p.source)
        lines = parse_list(self.name, p.source)
        reader = ImageReader(lines, p, batch_size, self.transformer, self.rng, self.pool)
        log.info("A total of %d images.", len(lines))
        if p.rand_skip:
            skip = int(self.rng.integers(p.rand_skip))
            log.info("Skipping first %d data points.", skip)
            if skip >= len(lines):
                raise DataError("image_data_param.rand_skip: not enough images (%d) to "
                                "skip %d" % (len(lines), skip))
            reader.position = skip
        return reader, (batch_size,) + reader.first_shape()

    def workers_field(self):
        return self.param.image_data_param.workers


def parse_list(layer_name, path):
    """[(image path, label, line number)] of an ImageData list file."""
    out = []
    for number, line in sources.read_lines(layer_name, "image_data_param.source", path,
                                           "image list file", "/path/to/list.txt"):
        parts = line.rsplit(None, 1)
        try:
            if len(parts) != 2:
                raise ValueError
            out.append((parts[0].strip(), int(parts[1]), number))
        except ValueError:
            raise DataError("%s line %d: expected '<image path> <integer label>', got %r"
                            % (path, number, line)) from None
    if not out:
        raise DataError("image list file %s is empty" % path)
    return out


class ImageReader:
    """Batches of transformed images, cycling through the list."""

    def __init__(self, lines, param, batch_size, transformer, rng, pool=None):
        self.lines = list(lines)
        self.pool = pool
        self.buffers = BatchBuffers()
        self.crops = False          # the GPU path: CropBatches (layers/_data_device.py)
        self.list_file = param.source
        self.root = param.root_folder
        self.size = (int(param.new_width), int(param.new_height))
        self.flag = cv2.IMREAD_COLOR if param.is_color else cv2.IMREAD_GRAYSCALE
        self.shuffle = param.shuffle
        self.batch_size = batch_size
        self.transformer = transformer
        self.rng = rng
        self.position = 0
        if self.shuffle:
            log.info("Shuffling data")
            self._shuffle()

    def _shuffle(self):
        self.lines = [self.lines[i] for i in self.rng.permutation(len(self.lines))]

    def read(self, entry):
        """The (C, H, W) uint8 image of a list entry, resized if asked."""
        name, _, number = entry
        path = self.root + name
        image = cv2.imread(path, self.flag) if os.path.isfile(path) else None
        if image is None:
            raise DataError("%s line %d: could not load image %s" % (
                self.list_file, number, sources.resolved(path)))
        if self.size[0] > 0:
            image = cv2.resize(image, self.size)
        return image[None] if image.ndim == 2 else image.transpose(2, 0, 1)

    def _name(self, entry):
        return "%s line %d (%s)" % (self.list_file, entry[2], entry[0])

    def first_shape(self):
        entry = self.lines[self.position]
        return checked_shape(self.transformer, self.read(entry).shape, self._name(entry))

    def _next(self):
        entry = self.lines[self.position]
        self.position += 1
        if self.position == len(self.lines):
            self.position = 0
            if self.shuffle:
                self._shuffle()
        return entry

    def load_batch(self):
        entries = [self._next() for _ in range(self.batch_size)]
        images = [None] * len(entries)

        def read(i):
            images[i] = self.read(entries[i])

        if self.pool is None:
            for i in range(len(entries)):
                read(i)
        else:
            self.pool.run(read, len(entries))
        data = transform_batch(self.transformer, images, lambda i: self._name(entries[i]),
                               "image_data_param.new_height/new_width", self.pool,
                               self.buffers, self.crops)
        return data, np.asarray([e[1] for e in entries], np.float32)
