"""The backward of MAX pooling over 2-D windows as one compiled loop (Numba).

Planes (P, H, W) (P = N * C); output (ph, pw) reads the window of rows
hs = ph * sh - pad_h .. hs + kh - 1 and columns likewise, clipped to the image.
The forward (layers/pooling.py) keeps, per output,

    code[p, ph, pw] = (h - hs) * kw + (w - ws) of the window's maximum (the
                      offset in the unclipped window), -1 when there is none

and the backward here computes

    dx[p, h, w]     = sum of dy over the outputs whose code points at (h, w),
                      added in output order (Caffe's; the NumPy path of
                      layers/pooling.py adds in offset order: where windows
                      overlap, sums of 2-4 terms may differ in the last bit)

One pass over dy and the codes; the NumPy loop over offsets is its reference.
"""
from .jit import njit


@njit
def max_pool_backward(dy, code, kh, kw, sh, sw, pad_h, pad_w, dx):
    planes, height, width = dx.shape
    oh, ow = dy.shape[1], dy.shape[2]
    dx[...] = 0
    for p in range(planes):
        for a in range(oh):
            hs = a * sh - pad_h
            for b in range(ow):
                k = code[p, a, b]
                if k >= 0:
                    dx[p, hs + k // kw, b * sw - pad_w + k % kw] += dy[p, a, b]
    return dx
