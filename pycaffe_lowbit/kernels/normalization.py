"""Launches of normalization.cu: BatchNorm, Scale / Bias sums, MVN.

Arrays are viewed as (outer, dim, inner) (``dims``); see normalization.cu.
Every function takes and returns arrays only (no layer objects); new arrays
are allocated where the NumPy layers hand a new array to a blob.
"""
from ..core import backend
from .loader import launch


def _empty(like, shape):
    return backend.get_array_module(like).empty(shape, like.dtype)


def channel_sums(a, dims, out, accumulate=False, b=None, scale=1.0):
    """out[c] (+)= scale * sum over the outer and inner axes of a (or of a * b),
    in two passes: per (outer, c) row, then per channel over the rows."""
    outer, dim, inner = dims
    rows = outer * dim
    part = _empty(a, rows)
    if b is None:
        launch("normalization", "lowbit_sum_inner", rows, rows, inner, a, scale, part)
    else:
        launch("normalization", "lowbit_sum_inner_prod", rows, rows, inner, a, b, scale, part)
    launch("normalization", "lowbit_sum_outer", dim, dim, outer, part, accumulate, out)
    return out


def scale_forward(x, dims, s, bias=None):
    """A new array x * s_c (+ b_c)."""
    y = _empty(x, x.shape)
    if bias is None:
        launch("normalization", "lowbit_scale_fwd", x.size, x.size, dims[1], dims[2], x, s, y)
    else:
        launch("normalization", "lowbit_scale_bias_fwd", x.size, x.size, dims[1], dims[2],
               x, s, bias, y)
    return y


def bias_forward(x, dims, b):
    """A new array x + b_c."""
    y = _empty(x, x.shape)
    launch("normalization", "lowbit_bias_fwd", x.size, x.size, dims[1], dims[2], x, b, y)
    return y


def batch_norm_forward(x, dims, blobs, use_global_stats, eps, fraction, x_norm):
    """BatchNorm's forward over x (N, C, L) (layers/batch_norm.py): a new y
    and the per-channel std. With batch statistics, x_norm (N, C, L) receives
    y too and ``blobs`` (mean, variance, scale factor arrays) their moving
    averages (``fraction``)."""
    outer, channels, inner = dims
    mean, std = _empty(x, channels), _empty(x, channels)
    y = _empty(x, x.shape)
    if use_global_stats:
        launch("normalization", "lowbit_bn_global_stats", channels, channels, *blobs, eps,
               mean, std)
        x_norm = y
    else:
        m = outer * inner
        channel_sums(x, dims, mean, scale=1.0 / m)
        var, part = _empty(x, channels), _empty(x, outer * channels)
        launch("normalization", "lowbit_sum_inner_centred_sq", part.size, part.size, channels,
               inner, x, mean, 1.0 / m, part)
        launch("normalization", "lowbit_sum_outer", channels, channels, outer, part, False, var)
        dt = x.dtype.type
        correction = dt(m) / dt(m - 1) if m > 1 else dt(1)
        launch("normalization", "lowbit_bn_update_stats", channels, channels, mean, var,
               fraction, correction, eps, *blobs, std)
    launch("normalization", "lowbit_channel_normalize", x.size, x.size, channels, inner, x,
           mean, std, y, x_norm)
    return y, std


def batch_norm_backward(dy, dims, std, x_norm=None):
    """A new dx: dy / std_c with the stored statistics (``x_norm`` None), else
    (dy - mean(dy) - mean(dy x_norm) x_norm) / std_c, means over n and L."""
    outer, channels, inner = dims
    dx = _empty(dy, dy.shape)
    if x_norm is None:
        launch("normalization", "lowbit_channel_divide", dy.size, dy.size, channels, inner, dy,
               std, dx)
        return dx
    sum_dyy = channel_sums(dy, dims, _empty(dy, channels), b=x_norm)
    sum_dy = channel_sums(dy, dims, _empty(dy, channels))
    launch("normalization", "lowbit_bn_bwd", dy.size, dy.size, channels, inner, dy, x_norm,
           sum_dyy, sum_dy, -1.0 / (outer * inner), std, dx)
    return dx


def mvn_forward(x, eps, normalize_variance):
    """MVN over x (groups, dim): a new y = (x - mean) (/ (sqrt(var) + eps)) and
    the per-group scale (None without variance)."""
    groups, dim = x.shape
    mean = _empty(x, groups)
    y = _empty(x, x.shape)
    launch("normalization", "lowbit_sum_inner", groups, groups, dim, x, 1.0 / max(dim, 1), mean)
    if not normalize_variance:
        launch("normalization", "lowbit_channel_subtract", x.size, x.size, groups, dim, x, mean,
               y)
        return y, None
    var, scale = _empty(x, groups), _empty(x, groups)
    launch("normalization", "lowbit_sum_inner_centred_sq", groups, groups, groups, dim, x, mean,
           1.0 / max(dim, 1), var)
    launch("normalization", "lowbit_mvn_scale", groups, groups, var, eps, scale)
    launch("normalization", "lowbit_channel_normalize", x.size, x.size, groups, dim, x, mean,
           scale, y, y)
    return y, scale


def mvn_backward(dy, y, scale):
    """MVN's new dx for dy, y (groups, dim): dy - mean(dy), and with the
    variance's ``scale`` (dy - mean(dy) - y mean(y dy)) / scale."""
    groups, dim = dy.shape
    inv = 1.0 / max(dim, 1)
    mean_dy = _empty(dy, groups)
    dx = _empty(dy, dy.shape)
    launch("normalization", "lowbit_sum_inner", groups, groups, dim, dy, inv, mean_dy)
    if scale is None:
        launch("normalization", "lowbit_channel_subtract", dy.size, dy.size, groups, dim, dy,
               mean_dy, dx)
        return dx
    mean_ydy = _empty(dy, groups)
    launch("normalization", "lowbit_sum_inner_prod", groups, groups, dim, y, dy, inv, mean_ydy)
    launch("normalization", "lowbit_mvn_bwd", dy.size, dy.size, dim, dy, y, mean_dy, mean_ydy,
           scale, dx)
    return dx
