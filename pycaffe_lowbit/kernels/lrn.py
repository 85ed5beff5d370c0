"""Launches of lrn.cu: LRN across or within channels of (N, C, H, W), forward
and backward, for layers/lrn.py's kernel path (the math is in lrn.cu).

The scalars are computed as the NumPy layer computes them (in Python, then
cast to the array's dtype by the launch), so both paths round alike.
"""
from ..core import backend
from . import loader

FAMILY = "lrn"


def forward(x, across, size, alpha, beta, k):
    """(y, scale) of x (N, C, H, W); ``size`` = local_size (odd)."""
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    y, scale = xp.empty_like(x), xp.empty_like(x)
    n, c, h, w = x.shape
    half = (size - 1) // 2
    if across:
        loader.launch(FAMILY, "lowbit_lrn_across_fwd", x.size, x.size, x, c, h * w, half,
                      alpha / size, k, beta, scale, y)
    else:
        loader.launch(FAMILY, "lowbit_lrn_within_fwd", x.size, x.size, x, h, w, half,
                      size * size, alpha, beta, scale, y)
    return y, scale


def backward(dy, x, y, scale, across, size, alpha, beta):
    """dx for the top gradient dy, the forward's x, y and scale."""
    xp = backend.get_array_module(dy)
    dy, x, y = (xp.ascontiguousarray(a) for a in (dy, x, y))
    ratio, dx = xp.empty_like(dy), xp.empty_like(dy)
    loader.launch(FAMILY, "lowbit_lrn_ratio", dy.size, dy.size, dy, y, scale, ratio)
    n, c, h, w = dy.shape
    half = (size - 1) // 2
    if across:
        loader.launch(FAMILY, "lowbit_lrn_across_bwd", dy.size, dy.size, x, dy, ratio, scale,
                      c, h * w, half, beta, 2.0 * alpha * beta / size, dx)
    else:
        loader.launch(FAMILY, "lowbit_lrn_within_bwd", dy.size, dy.size, x, dy, ratio, scale,
                      h, w, half, beta, 2.0 * alpha * beta / (size * size), dx)
    return dx
