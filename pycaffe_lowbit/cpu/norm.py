"""BatchNorm and Scale passes as compiled loops (Numba), over x viewed as
(N, C, L) (outer, channel, inner), per channel c over the N * L values.

BatchNorm's passes are split over threads (``parallel=True``, see ``cpu.jit``)
by (n, c) row, each thread reading its rows in memory order; a sum over a
channel is its rows' sums added in the order of n, so results do not depend on
the thread count. Scale's forward is split the same way; its backward stays
on one thread (measured: split by rows its sums vectorise worse, 2x slower on
one thread, no faster on two).
Sums accumulate in float64 (the NumPy references, in layers/batch_norm.py and
layers/scale_bias.py, sum in the array's dtype: float32 results agree to
rounding, about 1e-6 relative).

    bn_stats(x)                   -> mean[c], var[c] = mean((x - mean)^2)   (two passes)
    bn_normalize(x, mean, std, xn, y): xn = y = (x - mean) / std           (one pass)
    bn_backward(dy, xn, std, dx): dx = (dy - (mean(dy * xn) xn + mean(dy))) / std
    scale_forward(x, s, b, y, keep): y = x s + b (b = 0: no bias), keep = x (a copy;
                                  an empty ``keep`` skips it)
    scale_backward(dy, x, s, ds, db, dx): ds += sum dy x, db += sum dy,
                                  dx = dy s  (each part optional: empty arrays skip it)
"""
import numpy as np

from .jit import njit

prange = range   # numba.prange once a kernel compiles (cpu.jit)

# Sums may be reassociated (vectorised, several partial sums): 2-4x faster, the
# same result on every run of a machine; elementwise arithmetic stays IEEE.
_REDUCE = {"reassoc"}


@njit(fastmath=_REDUCE, parallel=True)
def _row_sums(x, centre, out):
    """out[i, k] = sum_j (x[i, k, j] - centre[k])^p, p = 1 (centre empty) or 2."""
    n, c, l = x.shape
    square = centre.shape[0] > 0
    for r in prange(n * c):
        i = r // c
        k = r % c
        q = 0.0
        if square:
            mu = centre[k]
            for j in range(l):
                d = x[i, k, j] - mu
                q += d * d
        else:
            for j in range(l):
                q += x[i, k, j]
        out[i, k] = q
    return out


def bn_stats(x, mean, var):
    """Two passes of row sums (``_row_sums``), added per channel in the order of n."""
    n, c, l = x.shape
    m = n * l if n * l > 0 else np.nan   # no values: nan statistics, as NumPy's mean
    part = np.empty((n, c))
    _row_sums(x, np.empty(0), part)
    mean[...] = part.sum(axis=0) / m
    _row_sums(x, mean, part)
    var[...] = part.sum(axis=0) / m
    return mean


@njit(parallel=True)
def bn_normalize(x, mean, std, xn, y):
    n, c, l = x.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        mu = mean[k]
        sd = std[k]
        for j in range(l):
            v = (x[i, k, j] - mu) / sd
            xn[i, k, j] = v
            y[i, k, j] = v
    return y


@njit(fastmath=_REDUCE, parallel=True)
def _bn_backward_sums(dy, xn, part):
    """part[0, i, k] = sum_j dy xn, part[1, i, k] = sum_j dy over row (i, k)."""
    n, c, l = dy.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        s_dyy = 0.0
        s_dy = 0.0
        for j in range(l):
            g = dy[i, k, j]
            s_dy += g
            s_dyy += g * xn[i, k, j]
        part[0, i, k] = s_dyy
        part[1, i, k] = s_dy
    return part


@njit(parallel=True)
def _bn_backward_apply(dy, xn, a, b, std, dx):
    n, c, l = dy.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        ak = a[k]
        bk = b[k]
        sd = std[k]
        for j in range(l):
            dx[i, k, j] = (dy[i, k, j] - (ak * xn[i, k, j] + bk)) / sd
    return dx


def bn_backward(dy, xn, std, dx):
    n, c, l = dy.shape
    m = n * l if n * l > 0 else np.nan
    part = np.empty((2, n, c))
    _bn_backward_sums(dy, xn, part)
    sums = part.sum(axis=1) / m            # the means, then rounded to the array's dtype
    a, b = sums.astype(dy.dtype)
    return _bn_backward_apply(dy, xn, a, b, std, dx)


@njit(parallel=True)
def scale_forward(x, s, b, y, keep):
    n, c, l = x.shape
    has_keep = keep.shape[0] > 0
    for r in prange(n * c):
        i = r // c
        k = r % c
        sk = s[k]
        bk = b[k]
        for j in range(l):
            v = x[i, k, j]
            if has_keep:
                keep[i, k, j] = v
            y[i, k, j] = v * sk + bk
    return y


@njit(fastmath=_REDUCE)
def scale_backward(dy, x, s, ds, db, dx):
    n, c, l = dy.shape
    want_s = ds.shape[0] > 0
    want_b = db.shape[0] > 0
    want_x = dx.shape[0] > 0
    acc_s = np.zeros(c)
    acc_b = np.zeros(c)
    for i in range(n):
        for k in range(c):
            sk = s[k]
            qs = 0.0
            qb = 0.0
            for j in range(l):
                g = dy[i, k, j]
                if want_s:
                    qs += g * x[i, k, j]
                if want_b:
                    qb += g
                if want_x:
                    dx[i, k, j] = g * sk
            acc_s[k] += qs
            acc_b[k] += qb
    for k in range(c):
        if want_s:
            ds[k] += acc_s[k]
        if want_b:
            db[k] += acc_b[k]
    return dx
