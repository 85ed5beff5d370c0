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

    bn_stats(x)                   -> mean[c], var[c] = mean((x - mean)^2)   (one pass)
    bn_normalize(x, mean, std, xn, y): xn = y = (x - mean) / std           (one pass)
    bn_backward(dy, xn, std, dx): dx = (dy - (mean(dy * xn) xn + mean(dy))) / std
    scale_forward(x, s, b, y, keep): y = x s + b (b = 0: no bias), keep = x (a copy;
                                  an empty ``keep`` skips it)
    scale_backward(dy, x, s, ds, db, dx): ds += sum dy x, db += sum dy,
                                  dx = dy s  (each part optional: empty arrays skip it)

BatchNorm followed in place by Scale, and by a ReLU or not
(``layers/bn_scale_pair.py``), one pass each way where the layers take several:
    bn_scale_forward(x, mean, std, s, b, y, relu, slope): xn = (x - mean) / std,
                                  v = xn s + b, y = v or, with ``relu``, relu(v)
    bn_scale_backward(dy, src, centre, spread, s, b, std, ds, db, dx, batch, relu,
                      slope): xn = (src - centre) / spread (the kept xn, or x with
                                  BatchNorm's mean and std), g = dy (through the
                                  ReLU's backward with ``relu``), ds += sum g xn,
                                  db += sum g (empty: skipped);
                                  dx = (g s - (mean(g s xn) xn + mean(g s))) / std
                                  (batch statistics) or g s / std (global)
"""
import numpy as np

from .jit import njit

prange = range   # numba.prange once a kernel compiles (cpu.jit)

# Sums may be reassociated (vectorised, several partial sums): 2-4x faster, the
# same result on every run of a machine; elementwise arithmetic stays IEEE.
_REDUCE = {"reassoc"}


@njit(fastmath=_REDUCE, parallel=True)
def _row_moments(x, shift, out):
    """out[0, i, k] = sum_j d, out[1, i, k] = sum_j d^2, d = x[i, k, j] - shift[k]."""
    n, c, l = x.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        sk = shift[k]
        q1 = 0.0
        q2 = 0.0
        for j in range(l):
            d = x[i, k, j] - sk
            q1 += d
            q2 += d * d
        out[0, i, k] = q1
        out[1, i, k] = q2
    return out


def bn_stats(x, mean, var):
    """One pass of shifted row sums (``_row_moments``, float64), added per
    channel in the order of n: with d = x - x[0, k, 0] (a value of the channel,
    so the sums hardly cancel), mean = shift + E[d], var = E[d^2] - E[d]^2."""
    n, c, l = x.shape
    m = n * l if n * l > 0 else np.nan   # no values: nan statistics, as NumPy's mean
    shift = x[0, :, 0].astype(np.float64) if n * l > 0 else np.zeros(c)
    part = np.empty((2, n, c))
    _row_moments(x, shift, part)
    d = part[0].sum(axis=0) / m
    mean[...] = shift + d
    var[...] = np.maximum(part[1].sum(axis=0) / m - d * d, 0.0)
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


@njit(parallel=True)
def bn_scale_forward(x, mean, std, s, b, y, relu, slope):
    """BatchNorm's normalisation, Scale's v = xn s + b and, with ``relu``, the
    ReLU y = v > 0 ? v : v slope, in one pass; the same float rounding as the
    layers' own passes (xn rounded, then scaled). xn is not kept: the backward
    recomputes it from x."""
    n, c, l = x.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        mu = mean[k]
        sd = std[k]
        sk = s[k]
        bk = b[k]
        for j in range(l):
            v = (x[i, k, j] - mu) / sd * sk + bk
            if relu:
                v = v if v > 0 else v * slope
            y[i, k, j] = v
    return y


@njit(fastmath=_REDUCE, parallel=True)
def _row_sums_dy(dy, src, centre, spread, s, b, relu, slope, part):
    """With xn = (src - centre) / spread (src = xn: centre 0, spread 1; src = x:
    BatchNorm's mean and std, xn as the forward rounded it) and g = dy, through
    the ReLU's backward when ``relu``: part[0, i, k] = sum_j g xn,
    part[1, i, k] = sum_j g (src empty: only the second, and no ReLU)."""
    n, c, l = dy.shape
    with_x = src.shape[0] > 0
    for r in prange(n * c):
        i = r // c
        k = r % c
        sk = s[k]
        bk = b[k]
        s_dyx = 0.0
        s_dy = 0.0
        if with_x:
            mu = centre[k]
            sd = spread[k]
            for j in range(l):
                g = dy[i, k, j]
                u = (src[i, k, j] - mu) / sd
                if relu:   # ReLU's backward from its y, recomputed as the forward made it
                    v = u * sk + bk
                    v = v if v > 0 else v * slope
                    g = g if v > 0 else g * slope
                s_dyx += g * u
                s_dy += g
        else:
            for j in range(l):
                s_dy += dy[i, k, j]
        part[0, i, k] = s_dyx
        part[1, i, k] = s_dy
    return part


@njit(parallel=True)
def _bn_scale_apply(dy, src, centre, spread, s, bias, relu, slope, centred, a, b, std, dx):
    """dx = (g s - (a xn + b)) / std, per channel a, b (not ``centred``: g s / std),
    g = dy through the ReLU's backward when ``relu``; xn from src as in
    ``_row_sums_dy``."""
    n, c, l = dy.shape
    for r in prange(n * c):
        i = r // c
        k = r % c
        sk = s[k]
        bk = bias[k]
        sd = std[k]
        if centred or relu:
            mu = centre[k]
            sp = spread[k]
            ak = a[k]
            ck = b[k]
            for j in range(l):
                u = (src[i, k, j] - mu) / sp
                g = dy[i, k, j]
                if relu:
                    v = u * sk + bk
                    v = v if v > 0 else v * slope
                    g = g if v > 0 else g * slope
                if centred:
                    dx[i, k, j] = (g * sk - (ak * u + ck)) / sd
                else:
                    dx[i, k, j] = g * sk / sd
        else:
            for j in range(l):
                dx[i, k, j] = dy[i, k, j] * sk / sd
    return dx


def bn_scale_backward(dy, src, centre, spread, s, bias, std, ds, db, dx, batch, relu,
                      slope):
    """Scale's parameter sums and BatchNorm's input gradient from one pass of
    sums over dy (and src) and one pass writing dx (an empty ``dx`` skips it);
    xn = (src - centre) / spread: the kept xn (centre 0, spread 1) or BatchNorm's
    input x (its mean and std). With ``relu``, dy is the ReLU's top diff. The
    BatchNorm sums are Scale's times s: mean(g s xn) = s sum(g xn) / m."""
    n, c, l = dy.shape
    need_x = batch or relu or ds.shape[0] > 0
    if batch or ds.shape[0] > 0 or db.shape[0] > 0:
        part = np.empty((2, n, c))
        _row_sums_dy(dy, src if need_x else np.empty((0, 0, 0), dy.dtype), centre, spread,
                     s, bias, relu, slope, part)
        sums = part.sum(axis=1)
        if ds.shape[0] > 0:
            ds += sums[0]
        if db.shape[0] > 0:
            db += sums[1]
    if dx.shape[0] == 0:
        return dx
    if batch:
        m = n * l if n * l > 0 else np.nan
        a, b = (sums * (s.astype(np.float64) / m)).astype(dy.dtype)
    else:
        a = b = np.zeros(c, dy.dtype)
    return _bn_scale_apply(dy, src, centre, spread, s, bias, relu, slope, batch, a, b, std,
                           dx)
