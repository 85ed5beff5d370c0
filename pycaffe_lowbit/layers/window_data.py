"""WindowData: R-CNN style windows cut from images (Caffe's WindowDataLayer).

window_data_param.source is a window file: for each image, in order,

    # <image index, from 0>
    <image path (root_folder prepended)>
    <channels> <height> <width>
    <number of windows>
    <class> <overlap> <x1> <y1> <x2> <y2>      (one line per window, inclusive)

A window with overlap >= fg_threshold is foreground (its class must be > 0);
one with overlap < bg_threshold is background (class and overlap set to 0);
others are dropped. Each batch draws batch_size - n_fg background windows,
then n_fg = int(batch_size * fg_fraction) foreground ones, uniformly with
replacement, each with a fair-coin mirror when transform_param.mirror.

A window is cut out and warped (bilinear) to crop_size x crop_size
(transform_param.crop_size, required). With context_pad p > 0, or crop_mode
"square" (the window first made square on its longer side), the window is
enlarged by crop / (crop - 2p) about its centre; the part outside the image is
left as zero padding of the warped size, mirrored with the image. Pixel values:
(x - mean) * window_data_param.scale (Caffe reads this scale, not
transform_param's), the mean from transform_param.mean_file (its centre
crop_size square, offset by the padding) or mean_value. Rounding as Caffe:
float32 arithmetic, C's round (half away from zero).

Tops: data (batch, channels, crop, crop), label (batch,). Prefetched; no backward.
"""
import logging
import os

import numpy as np

from ..data import sources
from ..data.datum import DataError
from ._data_base import PrefetchingDataLayer
from .registry import register
from ..core.lazy import lazy_module

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")
F32 = np.float32


@register("WindowData")
class WindowData(PrefetchingDataLayer):

    def data_setup(self):
        p = self.param.window_data_param
        tp = self.param.transform_param
        batch_size = self.check_batch_size(p.batch_size)
        if tp.crop_size <= 0:
            raise DataError("WindowData needs transform_param.crop_size > 0")
        if (p.context_pad or p.crop_mode == "square") and tp.crop_size <= 2 * p.context_pad:
            # the context scale crop / (crop - 2 pad) is infinite (Caffe divides by 0)
            raise DataError("window_data_param.context_pad %d leaves nothing of "
                            "transform_param.crop_size %d (needs crop_size > 2 * context_pad)"
                            % (p.context_pad, tp.crop_size))
        if p.crop_mode not in ("warp", "square"):
            raise DataError("window_data_param.crop_mode must be 'warp' or 'square', got %r"
                            % p.crop_mode)
        if tp.scale != 1:
            log.warning("layer '%s': WindowData scales by window_data_param.scale; "
                        "transform_param.scale is ignored, as in Caffe", self.name)
        log.info("Window data layer: foreground (object) overlap threshold: %g, "
                 "background (non-object) overlap threshold: %g, foreground sampling "
                 "fraction: %g, cache_images: %s, root_folder: %s", p.fg_threshold,
                 p.bg_threshold, p.fg_fraction, p.cache_images, p.root_folder)
        images, fg, bg = parse_window_file(self.name, p)
        reader = WindowReader(p, images, fg, bg, batch_size, self.transformer, self.rng)
        log.info("Number of images: %d", len(images))
        log.info("Amount of context padding: %d", p.context_pad)
        log.info("Crop mode: %s", p.crop_mode)
        channels = images[0][1]
        if self.transformer.mean is not None:
            m = self.transformer.mean.shape
            if m[0] != channels or m[2] < tp.crop_size \
                    or (m[2] - tp.crop_size) // 2 + tp.crop_size > m[1]:
                raise DataError("the mean file is %dx%dx%d (C x H x W); WindowData needs "
                                "%d channels and room for a centred crop_size %d square"
                                % (m + (channels, tp.crop_size)))
        if len(self.transformer.mean_values) not in (0, 1, channels):
            raise DataError("specify either 1 mean_value or as many as channels (%d)"
                            % channels)
        return reader, (batch_size, channels, tp.crop_size, tp.crop_size)


def parse_window_file(layer_name, p):
    """([(path, channels, height, width)], foreground and background windows as
    float32 rows (image, label, overlap, x1, y1, x2, y2))."""
    tokens = [(tok, number) for number, line in sources.read_lines(
        layer_name, "window_data_param.source", p.source, "window file",
        "/path/to/window_file.txt") for tok in line.split()]
    if not tokens:
        raise DataError("window file %s is empty" % p.source)
    pos = [0]

    def take(kind, what):
        if pos[0] >= len(tokens):
            raise DataError("window file %s ends early: expected %s" % (p.source, what))
        tok, number = tokens[pos[0]]
        pos[0] += 1
        try:
            return kind(tok)
        except ValueError:
            raise DataError("window file %s line %d: expected %s, got %r"
                            % (p.source, number, what, tok)) from None

    images, fg, bg = [], [], []
    while pos[0] < len(tokens):
        line = tokens[pos[0]][1]
        if take(str, "'#'") != "#":
            raise DataError("window file %s line %d: expected '# <image index>'"
                            % (p.source, line))
        index = take(int, "the image index")
        if index != len(images):
            raise DataError("window file %s line %d: image index %d, expected %d (images "
                            "are numbered in order from 0)" % (p.source, line, index,
                                                               len(images)))
        path = p.root_folder + take(str, "an image path")
        size = tuple(take(int, what) for what in ("channels", "height", "width"))
        if size[0] != 3:
            raise DataError("window file %s line %d: %d channels; WindowData reads images "
                            "in colour (3 channels)" % (p.source, line, size[0]))
        images.append((path,) + size)
        for _ in range(take(int, "the number of windows")):
            row = tokens[pos[0]][1] if pos[0] < len(tokens) else line
            label, overlap = take(int, "a class"), take(F32, "an overlap")
            box = [take(int, c) for c in ("x1", "y1", "x2", "y2")]
            if overlap >= F32(p.fg_threshold):       # float32 on both sides, as Caffe
                if label <= 0:
                    raise DataError("window file %s line %d: a foreground window (overlap "
                                    "%g) needs a class > 0, got %d" % (p.source, row,
                                                                       overlap, label))
                fg.append([index, label, overlap] + box)
            elif overlap < F32(p.bg_threshold):
                bg.append([index, 0, 0] + box)
    return images, np.asarray(fg, F32).reshape(-1, 7), np.asarray(bg, F32).reshape(-1, 7)


def _round(x):
    """C's round: half away from zero."""
    return int(np.sign(x) * np.floor(abs(float(x)) + 0.5))


class WindowReader:
    """Batches of warped windows."""

    def __init__(self, p, images, fg, bg, batch_size, transformer, rng):
        self.p = p
        self.images = images
        self.windows = (bg, fg)
        self.batch_size = batch_size
        self.transformer = transformer
        self.crop = transformer.crop
        self.rng = rng
        num_fg = int(F32(batch_size) * F32(p.fg_fraction))
        self.counts = (batch_size - num_fg, num_fg)
        for windows, count, kind in zip(self.windows, self.counts, ("background", "foreground")):
            if count and not len(windows):
                raise DataError("window file %s has no %s windows, but a batch needs %d"
                                % (p.source, kind, count))
        self.cache = [self._file_bytes(im[0]) for im in images] if p.cache_images else None

    def _file_bytes(self, path):
        if not os.path.isfile(path):
            raise DataError("window file %s: image %s not found"
                            % (self.p.source, sources.resolved(path)))
        with open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8)

    def _image(self, index):
        """(H, W, 3) uint8 BGR."""
        data = self.cache[index] if self.cache else self._file_bytes(self.images[index][0])
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise DataError("window file %s: could not decode image %s"
                            % (self.p.source, self.images[index][0]))
        return image

    def load_batch(self):
        data = np.zeros((self.batch_size, 3, self.crop, self.crop), F32)
        labels = np.zeros(self.batch_size, F32)
        item = 0
        for windows, count in zip(self.windows, self.counts):
            for _ in range(count):
                window = windows[self.rng.integers(len(windows))]
                mirror = bool(self.transformer.mirror and self.rng.integers(2))
                self._warp(window, mirror, data[item])
                labels[item] = window[1]
                item += 1
        return data, labels

    def _warp(self, window, mirror, out):
        """Write the warped window into ``out`` (3, crop, crop), zero-padded."""
        p, crop = self.p, self.crop
        image = self._image(int(window[0]))
        rows, cols = image.shape[:2]
        x1, y1, x2, y2 = (int(v) for v in window[3:])
        size_w = size_h = crop
        pad_w = pad_h = 0
        if p.context_pad > 0 or p.crop_mode == "square":
            context = F32(crop) / F32(crop - 2 * p.context_pad)
            half_h, half_w = F32((y2 - y1 + 1) / 2.0), F32((x2 - x1 + 1) / 2.0)
            cx, cy = F32(x1) + half_w, F32(y1) + half_h
            if p.crop_mode == "square":
                half_h = half_w = max(half_h, half_w)
            x1, x2 = _round(cx - half_w * context), _round(cx + half_w * context)
            y1, y2 = _round(cy - half_h * context), _round(cy + half_h * context)
            unclipped_h, unclipped_w = y2 - y1 + 1, x2 - x1 + 1
            pad_x1, pad_y1 = max(0, -x1), max(0, -y1)
            pad_x2, pad_y2 = max(0, x2 - cols + 1), max(0, y2 - rows + 1)
            x1, x2, y1, y2 = x1 + pad_x1, x2 - pad_x2, y1 + pad_y1, y2 - pad_y2
            scale_x, scale_y = F32(crop) / F32(unclipped_w), F32(crop) / F32(unclipped_h)
            size_w = _round(F32(x2 - x1 + 1) * scale_x)
            size_h = _round(F32(y2 - y1 + 1) * scale_y)
            pad_h = _round(F32(pad_y1) * scale_y)
            pad_w = _round(F32(pad_x2 if mirror else pad_x1) * scale_x)
            size_h = min(size_h, crop - pad_h)
            size_w = min(size_w, crop - pad_w)
        if not (0 <= x1 <= x2 < cols and 0 <= y1 <= y2 < rows):
            raise DataError("window file %s: window (%d, %d, %d, %d) of image %s lies outside "
                            "the %dx%d image" % (p.source, x1, y1, x2, y2,
                                                 self.images[int(window[0])][0], cols, rows))
        warped = cv2.resize(image[y1:y2 + 1, x1:x2 + 1], (size_w, size_h),
                            interpolation=cv2.INTER_LINEAR)
        if mirror:
            warped = warped[:, ::-1]
        pixels = warped.transpose(2, 0, 1).astype(F32)
        t = self.transformer
        if t.mean is not None:
            off = (t.mean.shape[2] - crop) // 2
            pixels -= t.mean[:, off + pad_h:off + pad_h + size_h, off + pad_w:off + pad_w + size_w]
        elif len(t.mean_values):
            pixels -= t.mean_values.reshape(-1, 1, 1)
        out[:, pad_h:pad_h + size_h, pad_w:pad_w + size_w] = pixels * F32(p.scale)
