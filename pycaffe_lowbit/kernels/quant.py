"""Launches of ``quant.cu`` for the quantizers of ``pycaffe_lowbit.quant``:
functions of arrays (and the quantizers' numbers), no quantizer objects.

Each returns what the quantizer's NumPy path returns (see the quantizer's
docstring for the math). ``out``, where taken, receives the result when it is
a C-contiguous array of the result's dtype (a layer's top or bottom diff, in
place allowed); otherwise a new array is returned. Inputs that are not
C-contiguous are copied first.

``runs(x)``: whether a quantizer takes this path for ``x``: the kernels are
active for it (a CuPy array, or any array under ``emulate()``) and it is
float32 or float64.
"""
import numpy as np

from ..core import backend
from .emulation import enabled as _emulated
from .loader import launch

FAMILY = "quant"
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def runs(*arrays):
    """True when the quantizer kernels take ``arrays`` (see the module docstring)."""
    if not all(getattr(a, "dtype", None) in _FLOATS for a in arrays):
        return False
    return _emulated() or backend.get_array_module(*arrays) is not np


def _contiguous(x):
    return backend.get_array_module(x).ascontiguousarray(x)


def _target(out, like):
    """``out`` when a kernel can write it directly, else a new array like ``like``."""
    if (out is not None and out.dtype == like.dtype and out.shape == like.shape
            and out.flags.c_contiguous):
        return out
    return backend.get_array_module(like).empty_like(like)


def _finish(result, out):
    if out is None or out is result:
        return result
    out[...] = result
    return out


def _device(values, dtype, xp):
    return xp.asarray(np.asarray(values).astype(dtype))


# -- activations (elementwise) ----------------------------------------------------
def hwgq_forward(x, thresholds, centers, low, out=None):
    """HWGQ levels: -> ``centers[i]`` for x > 0, ``low`` for x <= 0."""
    xp = backend.get_array_module(x)
    x = _contiguous(x)
    y = _target(out, x)
    launch(FAMILY, "lowbit_hwgq_fwd", x.size, x.size, x, y, _device(thresholds, x.dtype, xp),
           _device(centers, x.dtype, xp), len(centers), x.dtype.type(low))
    return _finish(y, out)


def elementwise(kernel, x, out, *scalars):
    """y = f(x) by a one-input kernel of quant.cu (or ``(family, kernel)``)."""
    family, kernel = kernel if isinstance(kernel, tuple) else (FAMILY, kernel)
    x = _contiguous(x)
    y = _target(out, x)
    launch(family, kernel, x.size, x.size, x, y, *scalars)
    return _finish(y, out)


def sign_forward(x, out=None):
    return elementwise("lowbit_sign_fwd", x, out)


def hard_tanh_forward(x, out=None):
    return elementwise("lowbit_hardtanh_fwd", x, out)


def leaky_relu_forward(x, slope, out=None):
    """y = x > 0 ? x : slope x: the neuron family's ReLU kernel."""
    return elementwise(("neuron", "lowbit_relu_fwd"), x, out, x.dtype.type(slope))


def _gradient(kernel, x, dy, out, *scalars):
    x, dy = _contiguous(x), _contiguous(dy)
    dx = _target(out, dy)
    launch(FAMILY, kernel, x.size, x.size, dy, x, dx, *scalars)
    return _finish(dx, out)


def relu_grad(x, dy, slope, clip, out=None):
    """dx = dy (x > 0 ? 1 : slope) [x <= clip]; ``clip`` None: no clip."""
    t = x.dtype.type
    return _gradient("lowbit_relu_grad", x, dy, out, t(slope), t(0 if clip is None else clip),
                     int(clip is not None))


def hard_tanh_grad(x, dy, clip, out=None):
    """dx = dy [-clip <= x <= clip]; ``clip`` None: dx = dy."""
    t = x.dtype.type
    return _gradient("lowbit_hardtanh_grad", x, dy, out, t(0 if clip is None else clip),
                     int(clip is not None))


def qnn_activation_forward(x, levels, low, high, out=None):
    t = x.dtype.type
    return elementwise("lowbit_qnn_act_fwd", x, out, t(levels), t(low), t(high))


def qnn_activation_backward(x, dy, levels, low, high, out=None):
    t = x.dtype.type
    return _gradient("lowbit_qnn_act_bwd", x, dy, out, t(levels), t(low), t(high))


def qnn_weights_forward(w, scale, low, high):
    t = w.dtype.type
    return elementwise("lowbit_qnn_weight_fwd", w, None, t(scale), t(low), t(high))


# -- weights, (num, k) rows ---------------------------------------------------------
def binary_weights(w, use_alpha):
    """Q = a_n copysign(1, W + 0), a_n = (sum_j |W_nj|) * (1 / k) with the row
    sums as a BLAS matrix-vector product (the NumPy path's and the fork's
    gemv; cuBLAS on a device), or 1."""
    xp = backend.get_array_module(w)
    w = _contiguous(w)
    num, k = w.shape
    q = xp.empty_like(w)
    t = w.dtype.type
    sums = xp.matmul(xp.abs(w), xp.ones(k, w.dtype)) if use_alpha and k else \
        xp.zeros(0, w.dtype)
    inv_k = t(1) / t(k) if k else t(0)
    launch(FAMILY, "lowbit_binary_weights", w.size, w.size, k, w, sums, inv_k,
           int(use_alpha), q)
    return q


def ternary_weights(w, factor):
    """TWN: D = factor * mean|W - mean W| (both means NumPy's / CuPy's
    reductions of W's dtype, as the NumPy path), then the per-row alpha (sum
    in double) and Q in two kernels."""
    xp = backend.get_array_module(w)
    w = _contiguous(w)
    num, k = w.shape
    t = w.dtype.type
    q = xp.empty_like(w)
    if w.size == 0:
        return q
    mean = xp.mean(w, dtype=w.dtype, keepdims=True).reshape(1)
    dev = xp.empty_like(w)
    launch(FAMILY, "lowbit_abs_deviation", w.size, w.size, w, mean, dev)
    dev_mean = xp.mean(dev, dtype=w.dtype, keepdims=True).reshape(1)
    alpha = xp.empty(num, w.dtype)
    launch(FAMILY, "lowbit_ternary_alpha", num, num, k, w, dev_mean, t(factor), alpha)
    launch(FAMILY, "lowbit_ternary_weights", w.size, w.size, k, w, dev_mean, t(factor),
           alpha, q)
    return q


def row_errors(w, q):
    """e_n = ||W_n - Q_n||_1 / ||W_n||_1 (0 for a zero row), float64 on the host."""
    xp = backend.get_array_module(w)
    w, q = _contiguous(w), _contiguous(q)
    num, k = w.shape
    errors = xp.zeros(num, np.float64)
    launch(FAMILY, "lowbit_row_errors", num, num, k, w, q, errors)
    return backend.to_numpy(errors)


def keep_rows(w, selected, q):
    """q[n] = w[n] for the rows where the host mask ``selected`` (num,) is set,
    in place on ``q`` (C-contiguous, W's shape)."""
    xp = backend.get_array_module(w)
    w = _contiguous(w)
    keep = xp.asarray(np.asarray(selected, np.uint8))
    launch(FAMILY, "lowbit_keep_rows", w.size, w.size, w.shape[1] if w.ndim > 1 else 1, w,
           keep, q)
    return q


# -- weight search ------------------------------------------------------------------
def search_forward(a, values, tau, noise, gumbel_scale, hard):
    """(W of a.shape[:-1], p of a.shape): p = softmax((a + g G) / tau) over
    the last axis; W = v[argmax p] (hard) or p @ v. ``noise``: G, or None."""
    xp = backend.get_array_module(a)
    a = _contiguous(a)
    t = a.dtype.type
    k = a.shape[-1]
    p = xp.empty_like(a)
    w = xp.empty(a.shape[:-1], a.dtype)
    g = _contiguous(noise) if noise is not None else xp.zeros(0, a.dtype)
    launch(FAMILY, "lowbit_ws_select_fwd", w.size, w.size, k, a, g, int(noise is not None),
           t(gumbel_scale), t(tau), _device(values, a.dtype, xp), int(bool(hard)), p, w)
    return w, p


def search_backward(p, dw, values, tau, into):
    """into += p (v - E_p[v]) dW / tau (``into``: the logits' diff, p's shape)."""
    xp = backend.get_array_module(p)
    p, dw = _contiguous(p), _contiguous(dw)
    target = _target(into, p)
    if target is not into:
        target[...] = into
    launch(FAMILY, "lowbit_ws_select_bwd", dw.size, dw.size, p.shape[-1], p, dw,
           _device(values, p.dtype, xp), p.dtype.type(tau), target)
    return _finish(target, into)
