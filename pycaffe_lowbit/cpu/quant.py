"""The HWGQ activation quantizer and its ReLU pseudo-gradient as one compiled
pass each (Numba); ``quant.activations`` (HWGQ, ReLUGrad) is the reference.

    hwgq_forward(x, t, c, low, y):  y = c_i for the first i with x <= t_i
                                    (t_K = +inf) where x > 0, else ``low``
    relu_grad(x, dy, slope, clip, has_clip, dx):
                                    dx = dy if x > 0 else dy * slope, and 0
                                    where not x <= clip (with ``has_clip``)

Elementwise, the same comparisons and products as the NumPy reference
(searchsorted + where), so results are bit-equal to it. Arrays are flat; the
scalars come in the arrays' dtype.

BWN's weight passes (``quant.weights.BinaryWeights``), split over the threads
by row of W (num, k), bit-equal to NumPy's abs and copysign:

    abs_rows(w, out):       out = |W|
    signed_rows(w, a, out): out_nj = copysign(a_n, W_nj + 0)  (a_n for 0 and -0.0)
"""
import math

import numpy as np

from .jit import njit

prange = range   # numba.prange once a kernel compiles (cpu.jit)


@njit
def hwgq_forward(x, t, c, low, y):
    k = t.shape[0]
    for j in range(x.shape[0]):
        v = x[j]
        if v > 0:
            i = 0
            while i < k and not v <= t[i]:
                i += 1
            y[j] = c[i]
        else:
            y[j] = low
    return y


@njit
def relu_grad(x, dy, slope, clip, has_clip, dx):
    for j in range(x.shape[0]):
        v = x[j]
        if has_clip and not v <= clip:
            dx[j] = 0
        elif v > 0:
            dx[j] = dy[j]
        else:
            dx[j] = dy[j] * slope
    return dx


@njit(parallel=True)
def abs_rows(w, out):
    for n in prange(w.shape[0]):
        for j in range(w.shape[1]):
            out[n, j] = abs(w[n, j])
    return out


@njit(parallel=True)
def signed_rows(w, a, out):
    zero = np.zeros(1, w.dtype)[0]
    for n in prange(w.shape[0]):
        an = a[n]
        for j in range(w.shape[1]):
            out[n, j] = math.copysign(an, w[n, j] + zero)
    return out
