"""Elementwise activation quantizers: a value function and a pseudo-gradient.

Value functions (``forward(x)``), as the HWGQ fork's Quant layer computes them:

    HWGQ(c, s)    y = -s                     for x <= 0 (-0.0 when s = 0)
                  y = c_i for the first i with x <= t_i, 0 < x
                  t_i = (c_i + c_{i+1}) / 2 in float32, t_K = +inf
                  (a tie x = t_i takes the lower level; no zero level for x > 0)
    Sign()        y = +1 if x >= 0 (0 and -0.0 included) else -1
    HardTanh()    y = clamp(x, -1, 1)
    LeakyReLU(s)  y = x if x > 0 else s x

Pseudo-gradients (``backward(x, dy)``), with clip = +inf when not positive:

    ReLUGrad(s, clip)   dx = dy * (1 if x > 0 else s) * [x <= clip]
    HardTanhGrad(clip)  dx = dy * [-clip <= x <= clip]

``ActivationQuantizer(value, gradient)`` joins one of each. Outputs have x's
dtype and array module; x may have any shape. ``out`` (optional) receives the
result (in place allowed: ``out`` may be x, or dy). On the GPU, and under
``kernels.emulate()``, each runs its kernel of ``kernels/quant.cu``; on NumPy
with Numba on, HWGQ and ReLUGrad run one compiled pass each (``cpu/quant.py``),
bit-equal to the code here.

``levels`` is the tuple of values a value function outputs (None when it
outputs a continuum: HardTanh, LeakyReLU); ``level_bits(n)`` = ceil(log2 n),
at least 1, the bits that index n levels (what a model summary reports).
"""
import math

import numpy as np

from ..core import backend
from ..cpu import jit, quant as cpu_quant
from ..kernels import quant as kq


def _store(result, out):
    """``result``, or written into ``out`` when one is given."""
    if out is None:
        return result
    out[...] = result
    return out


def _compiled(*arrays):
    """The one-pass kernels of ``cpu/quant.py`` take these arrays: ``jit.runs``,
    and all C-contiguous, of one shape and dtype (so flat views line up); a
    ``None`` (an output still to allocate) is skipped."""
    given = [a for a in arrays if a is not None]
    return jit.runs(*given) and all(
        a.flags.c_contiguous and a.shape == given[0].shape and a.dtype == given[0].dtype
        for a in given)


def level_bits(count):
    """Bits that index ``count`` distinct levels: ceil(log2 count), at least 1."""
    return max(1, int(count - 1).bit_length())


def _clip_value(clip):
    """clip_thr as the forks read it: a positive bound, otherwise none (+inf)."""
    clip = float(clip)
    return clip if clip > 0 else math.inf


class HWGQ:
    """Half-wave Gaussian quantizer with positive levels ``centers`` (increasing)
    and the constant -negative_slope for x <= 0. See the module docstring."""

    def __init__(self, centers, negative_slope=0.0):
        c = np.asarray(centers, np.float32)
        if c.ndim != 1 or c.size == 0:
            raise ValueError("HWGQ needs at least one center")
        if not (np.all(c > 0) and np.all(np.diff(c) > 0)):
            raise ValueError("HWGQ centers must be positive and increasing (got %s)"
                             % ", ".join("%g" % v for v in c))
        self.centers = c
        self.thresholds = (c[:-1] + c[1:]) / np.float32(2)   # float32 midpoints
        self.negative_slope = np.float32(negative_slope)

    @property
    def levels(self):
        """-negative_slope, then the centers."""
        return (-float(self.negative_slope),) + tuple(float(c) for c in self.centers)

    def forward(self, x, out=None):
        if kq.runs(x):
            return kq.hwgq_forward(x, self.thresholds, self.centers, -self.negative_slope, out)
        if _compiled(x, out):
            y = np.empty_like(x) if out is None else out
            cpu_quant.hwgq_forward(x.reshape(-1), self.thresholds.astype(x.dtype),
                                   self.centers.astype(x.dtype),
                                   x.dtype.type(-self.negative_slope), y.reshape(-1))
            return y
        xp = backend.get_array_module(x)
        levels = xp.asarray(self.centers.astype(x.dtype))
        idx = xp.searchsorted(xp.asarray(self.thresholds.astype(x.dtype)), x, side="left")
        low = xp.asarray(-self.negative_slope, dtype=x.dtype)   # -0.0 when the slope is 0
        return _store(xp.where(x > 0, levels[idx], low), out)


class Sign:
    """y = +1 if x >= 0 else -1 (so sign(0) = sign(-0.0) = +1)."""

    levels = (-1.0, 1.0)

    def forward(self, x, out=None):
        if kq.runs(x):
            return kq.sign_forward(x, out)
        xp = backend.get_array_module(x)
        one = x.dtype.type(1)
        return _store(xp.where(x >= 0, one, -one), out)


class HardTanh:
    """y = clamp(x, -1, 1)."""

    levels = None

    def forward(self, x, out=None):
        if kq.runs(x):
            return kq.hard_tanh_forward(x, out)
        xp = backend.get_array_module(x)
        return _store(xp.clip(x, x.dtype.type(-1), x.dtype.type(1)), out)


class LeakyReLU:
    """y = x if x > 0 else negative_slope * x (never clipped)."""

    levels = None

    def __init__(self, negative_slope=0.0):
        self.negative_slope = float(np.float32(negative_slope))

    def forward(self, x, out=None):
        if kq.runs(x):
            return kq.leaky_relu_forward(x, self.negative_slope, out)
        xp = backend.get_array_module(x)
        return _store(xp.where(x > 0, x, x * x.dtype.type(self.negative_slope)), out)


class ReLUGrad:
    """dx = dy * (1 if x > 0 else negative_slope) * [x <= clip]: only an upper
    clip, and x == clip passes."""

    def __init__(self, negative_slope=0.0, clip=0.0):
        self.negative_slope = float(np.float32(negative_slope))
        self.clip = _clip_value(np.float32(clip))

    def backward(self, x, dy, out=None):
        clip = None if self.clip == math.inf else self.clip
        if kq.runs(x, dy) and x.dtype == dy.dtype:
            return kq.relu_grad(x, dy, self.negative_slope, clip, out)
        if _compiled(x, dy, out):
            dx = np.empty_like(dy) if out is None else out
            dt = dy.dtype.type
            cpu_quant.relu_grad(x.reshape(-1), dy.reshape(-1), dt(self.negative_slope),
                                dt(0 if clip is None else clip), clip is not None,
                                dx.reshape(-1))
            return dx
        xp = backend.get_array_module(x)
        dx = xp.where(x > 0, dy, dy * dy.dtype.type(self.negative_slope))
        if clip is not None:
            dx = xp.where(x <= x.dtype.type(clip), dx, dy.dtype.type(0))
        return _store(dx, out)


class HardTanhGrad:
    """dx = dy where -clip <= x <= clip (both ends included), else 0."""

    def __init__(self, clip=0.0):
        self.clip = _clip_value(np.float32(clip))

    def backward(self, x, dy, out=None):
        clip = None if self.clip == math.inf else self.clip
        if kq.runs(x, dy) and x.dtype == dy.dtype:
            return kq.hard_tanh_grad(x, dy, clip, out)
        xp = backend.get_array_module(x)
        if clip is None:
            return _store(dy.copy(), out)
        c = x.dtype.type(clip)
        return _store(xp.where((x >= -c) & (x <= c), dy, dy.dtype.type(0)), out)


class ActivationQuantizer:
    """``value.forward`` as the forward, ``gradient.backward`` as the STE."""

    def __init__(self, value, gradient):
        self.value = value
        self.gradient = gradient

    @property
    def levels(self):
        return self.value.levels

    def forward(self, x, out=None):
        return self.value.forward(x, out=out)

    def backward(self, x, dy, out=None):
        return self.gradient.backward(x, dy, out=out)
