"""Launches of im2col.cu: im2col / col2im of a 1-D or 2-D geometry in either
column layout of layers/_im2col.py, and the layout glue of the convolution
GEMMs (leading-axes swap, channel bias).

Geometry arguments are per spatial axis (tuples of 1 or 2 entries); a 1-D
geometry runs as 2-D with a height of 1. ``batch_first`` selects the column
layout: (M, C, *K, *O) (the Im2col layer) or (C, *K, M, *O) (one GEMM over
the batch). Arrays are taken C-contiguous (a strided input is copied first);
outputs are written in place.
"""
from ..core import backend
from . import loader

FAMILY = "im2col"


def supported(kernel, array):
    """True for what the kernels handle: 1 or 2 spatial axes, float values
    (the packed runtime's integer level images take the generic path)."""
    return 1 <= len(kernel) <= 2 and array.dtype.kind == "f"


def _plane(*per_axis):
    """Each per-axis tuple as (height-axis value, width-axis value); 1-D gets
    the neutral height axis (size 1, kernel 1, pad 0, stride 1, dilation 1)."""
    neutral = (1, 1, 0, 1, 1, 1)
    return [tuple(int(v) for v in t) if len(t) == 2 else (n, int(t[0]))
            for t, n in zip(per_axis, neutral)]


def _strides(batch, channels, kernel, out_size, batch_first):
    k = kernel[0] * kernel[1]
    area = out_size[0] * out_size[1]
    if batch_first:
        return channels * k * area, k * area, area
    return area, k * batch * area, batch * area


def _launch(name, n, src, dst, batch, channels, size, kernel, stride, pad, dilation,
            out_size, batch_first):
    (h, w), (kh, kw), (ph, pw), (sh, sw), (dh, dw), (oh, ow) = _plane(
        size, kernel, pad, stride, dilation, out_size)
    strides = _strides(batch, channels, (kh, kw), (oh, ow), batch_first)
    loader.launch(FAMILY, name, n, n, src, channels, h, w, kh, kw, ph, pw, sh, sw, dh, dw,
                  oh, ow, *strides, dst)


def im2col(x, col, kernel, stride, pad, dilation, out_size, batch_first=False):
    """Fill ``col`` (the column array, C-contiguous) from ``x`` (M, C, *S)."""
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    m, c = x.shape[:2]
    n = m * c * _count(out_size)
    _launch("lowbit_im2col", n, x, col, m, c, x.shape[2:], kernel, stride, pad, dilation,
            out_size, batch_first)
    return col


def col2im(col, x, kernel, stride, pad, dilation, out_size, batch_first=False):
    """Overwrite ``x`` (M, C, *S, C-contiguous) with the adjoint of im2col of ``col``."""
    xp = backend.get_array_module(col)
    col = xp.ascontiguousarray(col)
    m, c = x.shape[:2]
    _launch("lowbit_col2im", x.size, col, x, m, c, x.shape[2:], kernel, stride, pad,
            dilation, out_size, batch_first)
    return x


def swap_leading_axes(src, dst):
    """dst (B, A, ...) = src (A, B, ...) with the first two axes swapped."""
    a, b = src.shape[:2]
    inner = src.size // max(a * b, 1)
    xp = backend.get_array_module(src)
    loader.launch(FAMILY, "lowbit_swap_leading_axes", dst.size, dst.size,
                  xp.ascontiguousarray(src), a, b, inner, dst)
    return dst


def add_channel_bias(y, bias):
    """y (M, C, ...) += bias[c], in place."""
    channels = y.shape[1]
    inner = y.size // max(y.shape[0] * channels, 1)
    loader.launch(FAMILY, "lowbit_add_channel_bias", y.size, y.size, y, channels, inner,
                  bias)
    return y


def _count(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n
