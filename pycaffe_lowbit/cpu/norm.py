"""BatchNorm and Scale passes as compiled loops (Numba), over x viewed as
(N, C, L) (outer, channel, inner), per channel c over the N * L values.

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

# Sums may be reassociated (vectorised, several partial sums): 2-4x faster, the
# same result on every run of a machine; elementwise arithmetic stays IEEE.
_REDUCE = {"reassoc"}


@njit(fastmath=_REDUCE)
def bn_stats(x, mean, var):
    n, c, l = x.shape
    m = n * l if n * l > 0 else np.nan   # no values: nan statistics, as NumPy's mean
    for k in range(c):
        s = 0.0
        for i in range(n):
            for j in range(l):
                s += x[i, k, j]
        mu = s / m
        q = 0.0
        for i in range(n):
            for j in range(l):
                d = x[i, k, j] - mu
                q += d * d
        mean[k] = mu
        var[k] = q / m
    return mean


@njit
def bn_normalize(x, mean, std, xn, y):
    n, c, l = x.shape
    for i in range(n):
        for k in range(c):
            mu = mean[k]
            sd = std[k]
            for j in range(l):
                v = (x[i, k, j] - mu) / sd
                xn[i, k, j] = v
                y[i, k, j] = v
    return y


@njit(fastmath=_REDUCE)
def bn_backward(dy, xn, std, dx):
    n, c, l = dy.shape
    m = n * l if n * l > 0 else np.nan
    ab = np.empty(2, dy.dtype)
    for k in range(c):
        s_dyy = 0.0
        s_dy = 0.0
        for i in range(n):
            for j in range(l):
                g = dy[i, k, j]
                s_dy += g
                s_dyy += g * xn[i, k, j]
        ab[0] = s_dyy / m   # rounded to the array's dtype
        ab[1] = s_dy / m
        a = ab[0]
        b = ab[1]
        sd = std[k]
        for i in range(n):
            for j in range(l):
                dx[i, k, j] = (dy[i, k, j] - (a * xn[i, k, j] + b)) / sd
    return dx


@njit
def scale_forward(x, s, b, y, keep):
    n, c, l = x.shape
    has_keep = keep.shape[0] > 0
    for i in range(n):
        for k in range(c):
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
