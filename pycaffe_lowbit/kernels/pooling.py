"""Launches of pooling.cu: MAX / AVE / STOCHASTIC pooling of (N, C, H, W),
forward and backward, for layers/pooling.py's kernel path.

A ``Geometry`` holds the layer's sizes (input, kernel, stride, pad, output,
each (h, w)), already through Caffe's output-size rule. The MAX / STOCHASTIC
TRAIN mask is Caffe's: the index h W + w of the chosen input in its plane,
-1 for none; an int32 array of the output's shape, or the mask top itself
(float) when the layer has two tops. Forward allocates its outputs; backward
returns a new dx of the input's shape (every element written, no zero fill).
"""
import numpy as np

from ..core import backend
from . import loader

FAMILY = "pooling"


class Geometry:
    """The sizes of one pooling: in_size, kernel, stride, pad, out_size as (h, w)."""

    def __init__(self, in_size, kernel, stride, pad, out_size):
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)
        self.kernel, self.stride, self.pad = tuple(kernel), tuple(stride), tuple(pad)

    def args(self, pad=True):
        """The kernels' geometry arguments: H, W, OH, OW, kh, kw, sh, sw[, ph, pw]."""
        sizes = self.in_size + self.out_size + self.kernel + self.stride
        return tuple(int(v) for v in sizes + (self.pad if pad else ()))

    def out_shape(self, x):
        return x.shape[:2] + self.out_size


def _launch(name, n, *args):
    loader.launch(FAMILY, name, n, n, *args)


def _contiguous(a):
    return backend.get_array_module(a).ascontiguousarray(a)


def max_forward(x, geometry, top_mask=None):
    """(y, mask): the window maxima and Caffe's argmax mask (``top_mask`` if
    given, filled as floats, else a new int32 array)."""
    xp, x = backend.get_array_module(x), _contiguous(x)
    y = xp.empty(geometry.out_shape(x), x.dtype)
    if top_mask is None:
        mask = xp.empty(y.shape, np.int32)
        _launch("lowbit_maxpool_fwd", y.size, x, *geometry.args(), y, mask)
        return y, mask
    _launch("lowbit_maxpool_fwd_topmask", y.size, x, *geometry.args(), y, top_mask)
    return y, top_mask


def ave_forward(x, geometry):
    xp, x = backend.get_array_module(x), _contiguous(x)
    y = xp.empty(geometry.out_shape(x), x.dtype)
    _launch("lowbit_avepool_fwd", y.size, x, *geometry.args(), y)
    return y


def stochastic_train_forward(x, u, geometry):
    """(y, mask) for uniform draws ``u`` in [0, 1), one per output (x's dtype)."""
    xp, x = backend.get_array_module(x), _contiguous(x)
    y = xp.empty(geometry.out_shape(x), x.dtype)
    mask = xp.empty(y.shape, np.int32)
    _launch("lowbit_stopool_fwd_train", y.size, x, _contiguous(u), *geometry.args(pad=False),
            y, mask)
    return y, mask


def stochastic_test_forward(x, geometry):
    """(y, sums, squares): y = squares / sums per window (sums start at FLT_MIN)."""
    xp, x = backend.get_array_module(x), _contiguous(x)
    y = xp.empty(geometry.out_shape(x), x.dtype)
    sums, squares = xp.empty_like(y), xp.empty_like(y)
    _launch("lowbit_stopool_fwd_test", y.size, x, *geometry.args(pad=False), y, sums, squares)
    return y, sums, squares


def _dx(dy, geometry):
    return backend.get_array_module(dy).empty(dy.shape[:2] + geometry.in_size, dy.dtype)


def mask_backward(dy, mask, geometry):
    """dx of MAX or STOCHASTIC TRAIN: dy to the input the mask names."""
    dy, dx = _contiguous(dy), _dx(dy, geometry)
    name = "lowbit_pool_mask_bwd" if mask.dtype == np.int32 else "lowbit_pool_topmask_bwd"
    _launch(name, dx.size, dy, _contiguous(mask), *geometry.args(), dx)
    return dx


def ave_backward(dy, geometry):
    dy, dx = _contiguous(dy), _dx(dy, geometry)
    _launch("lowbit_avepool_bwd", dx.size, dy, *geometry.args(), dx)
    return dx


def stochastic_test_backward(dy, x, sums, squares, geometry):
    dy, dx = _contiguous(dy), _dx(dy, geometry)
    _launch("lowbit_stopool_bwd_test", dx.size, dy, _contiguous(x), sums, squares,
            *geometry.args(pad=False), dx)
    return dx
