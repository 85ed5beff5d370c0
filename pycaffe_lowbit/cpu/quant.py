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
"""
from .jit import njit


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
