"""MAX pooling over 2-D windows as compiled loops (Numba), forward and backward.

Planes x (P, H, W) (P = N * C); output (ph, pw) reads the window of rows
hs = ph * sh - pad_h .. hs + kh - 1 and columns likewise, clipped to the image:

    y[p, ph, pw]    = max over the clipped window, first maximum in row-major
                      order (strict '>'), starting from ``lowest``
    code[p, ph, pw] = (h - hs) * kw + (w - ws) of that maximum (the offset in
                      the unclipped window), -1 when nothing beats ``lowest``
    dx[p, h, w]     = sum of dy over the outputs whose code points at (h, w),
                      added in output order (Caffe's; the NumPy path of
                      layers/pooling.py adds in offset order: where windows
                      overlap, sums of 2-4 terms may differ in the last bit)

One pass over x forward, one over dy and the codes backward, per plane.
"""
from .jit import njit


@njit
def max_pool_forward(x, kh, kw, sh, sw, pad_h, pad_w, lowest, y, code):
    planes, height, width = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for p in range(planes):
        for a in range(oh):
            hs = a * sh - pad_h
            h0, h1 = max(hs, 0), min(hs + kh, height)
            for b in range(ow):
                ws = b * sw - pad_w
                w0, w1 = max(ws, 0), min(ws + kw, width)
                best = lowest
                k = -1
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = x[p, h, w]
                        if v > best:
                            best = v
                            k = (h - hs) * kw + (w - ws)
                y[p, a, b] = best
                code[p, a, b] = k
    return y


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
