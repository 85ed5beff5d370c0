"""im2col / col2im for 2-D convolution as one compiled loop nest (Numba).

For x (N, C, H, W), kernel (kh, kw), stride s, pad p, dilation d and output
(oh, ow), the column array of the layers' GEMM layout is

    col[c, i, j, n, y, z] = x[n, c, y*s_h - p_h + i*d_h, z*s_w - p_w + j*d_w]

(0 where the index falls outside the image), i.e. ``_im2col.im2col(...,
batch_first=False)``. ``col2im`` is its adjoint: x (zeroed first) gains every
column entry at the position it was read from, summed in kernel-offset order
(i, j row-major), the order of the NumPy reference, so float results are
bit-identical to it. One plain loop nest per call, no threads: the results do
not depend on the thread count.
"""
from .jit import njit


@njit
def _im2col_2d(x, kh, kw, sh, sw, ph, pw, dh, dw, col):
    n_img, chans, height, width = x.shape
    oh, ow = col.shape[4], col.shape[5]
    zero = x.dtype.type(0)
    for c in range(chans):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pw
                z_lo = 0   # first z with z*sw + off >= 0
                if off < 0:
                    z_lo = min(ow, (-off + sw - 1) // sw)
                z_hi = 0   # one past the last z with z*sw + off < width
                if width - 1 - off >= 0:
                    z_hi = min(ow, (width - 1 - off) // sw + 1)
                z_hi = max(z_hi, z_lo)
                for n in range(n_img):
                    for y in range(oh):
                        r = y * sh - ph + i * dh
                        dst = col[c, i, j, n, y]
                        if r < 0 or r >= height:
                            for z in range(ow):
                                dst[z] = zero
                            continue
                        src = x[n, c, r]
                        for z in range(z_lo):
                            dst[z] = zero
                        for z in range(z_lo, z_hi):
                            dst[z] = src[z * sw + off]
                        for z in range(z_hi, ow):
                            dst[z] = zero
    return col


@njit
def _col2im_2d(col, kh, kw, sh, sw, ph, pw, dh, dw, x):
    n_img, chans, height, width = x.shape
    oh, ow = col.shape[4], col.shape[5]
    x[...] = 0
    for c in range(chans):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pw
                z_lo = 0
                if off < 0:
                    z_lo = min(ow, (-off + sw - 1) // sw)
                z_hi = 0
                if width - 1 - off >= 0:
                    z_hi = min(ow, (width - 1 - off) // sw + 1)
                for n in range(n_img):
                    for y in range(oh):
                        r = y * sh - ph + i * dh
                        if r < 0 or r >= height:
                            continue
                        src = col[c, i, j, n, y]
                        dst = x[n, c, r]
                        for z in range(z_lo, z_hi):
                            dst[z * sw + off] += src[z]
    return x


def supported(x, kernel, col):
    """The kernels take 2-D geometries on C-contiguous float arrays of one dtype."""
    return (len(kernel) == 2 and x.ndim == 4 and x.dtype == col.dtype
            and x.dtype.kind == "f" and x.flags.c_contiguous and col.flags.c_contiguous)


def im2col_2d(x, kernel, stride, pad, dilation, col):
    """Fill ``col`` (C, kh, kw, N, oh, ow) from x (N, C, H, W); returns col."""
    return _im2col_2d(x, kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1],
                      dilation[0], dilation[1], col)


def col2im_2d(col, kernel, stride, pad, dilation, x):
    """Overwrite x (N, C, H, W) with the adjoint sum of ``col``; returns x."""
    return _col2im_2d(col, kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1],
                      dilation[0], dilation[1], x)
