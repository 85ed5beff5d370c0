"""Launches of copy.cu: the copies of Concat / Slice (and SPP's concatenation),
Crop and Tile. Inputs are taken C-contiguous (a strided view is copied
first); every function returns new arrays, each element written once.
"""
import numpy as np

from ..core import backend
from . import loader

FAMILY = "copy"
_geometries = {}   # (module, device, values) -> int64 array on that device (Crop)


def _split_axis(shape, axis):
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    return outer, inner


def concat(parts, axis):
    """The parts joined along ``axis`` (every other dim equal): Concat's top."""
    xp = backend.get_array_module(*parts)
    shape = list(parts[0].shape)
    shape[axis] = sum(int(p.shape[axis]) for p in parts)
    y = xp.empty(shape, parts[0].dtype)
    _, inner = _split_axis(shape, axis)
    start = 0
    for part in parts:
        part = xp.ascontiguousarray(part)
        loader.launch(FAMILY, "lowbit_block_put", part.size, part.size, part,
                      part.shape[axis] * inner, shape[axis] * inner, start * inner, y)
        start += part.shape[axis]
    return y


def take(y, axis, start, size):
    """y's block [start, start + size) along ``axis``, as a new array."""
    xp = backend.get_array_module(y)
    y = xp.ascontiguousarray(y)
    shape = list(y.shape)
    shape[axis] = size
    x = xp.empty(shape, y.dtype)
    _, inner = _split_axis(shape, axis)
    loader.launch(FAMILY, "lowbit_block_take", x.size, x.size, y, size * inner,
                  y.shape[axis] * inner, start * inner, x)
    return x


def _geometry(xp, values):
    """The int64 array of ``values`` on xp's device, made once per value set."""
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, tuple(int(v) for v in values))
    if key not in _geometries:
        if len(_geometries) > 256:
            _geometries.clear()
        _geometries[key] = xp.asarray(np.array(key[2], np.int64))
    return _geometries[key]


def crop_forward(x, offsets, shape):
    """x[o_0 : o_0 + shape_0, ...] for per-axis ``offsets`` and output ``shape``."""
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    y = xp.empty(tuple(shape), x.dtype)
    geometry = _geometry(xp, tuple(x.shape) + tuple(offsets) + tuple(shape))
    loader.launch(FAMILY, "lowbit_crop_fwd", y.size, y.size, x, x.ndim, geometry, y)
    return y


def crop_backward(dy, offsets, x_shape):
    """dx of x_shape: dy at the cropped block, 0 elsewhere."""
    xp = backend.get_array_module(dy)
    dy = xp.ascontiguousarray(dy)
    dx = xp.empty(tuple(x_shape), dy.dtype)
    geometry = _geometry(xp, tuple(x_shape) + tuple(offsets) + tuple(dy.shape))
    loader.launch(FAMILY, "lowbit_crop_bwd", dx.size, dx.size, dy, dx.ndim, geometry, dx)
    return dx


def tile_forward(x, tiles, axis):
    """x repeated ``tiles`` times along ``axis`` (the block of axes from it on)."""
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    inner = int(np.prod(x.shape[axis:], dtype=np.int64))
    shape = list(x.shape)
    shape[axis] *= tiles
    y = xp.empty(shape, x.dtype)
    loader.launch(FAMILY, "lowbit_tile_fwd", y.size, y.size, x, tiles, inner, y)
    return y


def tile_backward(dy, tiles, axis):
    """The sum of dy's ``tiles`` copies along ``axis``."""
    xp = backend.get_array_module(dy)
    dy = xp.ascontiguousarray(dy)
    shape = list(dy.shape)
    shape[axis] //= tiles
    dx = xp.empty(shape, dy.dtype)
    inner = int(np.prod(shape[axis:], dtype=np.int64))
    loader.launch(FAMILY, "lowbit_tile_bwd", dx.size, dx.size, dy, tiles, inner, dx)
    return dx
