"""Bit packing of quantized activations for the popcount kernels (Numba).

``pack_rows(x, mid, uniform, out)``: the level index of each value of x (M, k)
(the number of midpoints below it, NaN last: ``searchsorted(side="left")``),
its planes (uniform codes: bit p of the index; thermometer: [index > p]),
packed along k: out (P, M, >= ceil(k / 64)) uint64, bit j in word j // 64 at
j % 64, the rest 0. NumPy reference: ``bitops.pack_bits(coding.planes(coding.index(x)))``.

``pack_pixels(x, mid, uniform, out)``: the same for the channels of each pixel:
x (B, C, H * W) -> out (B, H * W, P, ceil(C / 64)).

``im2col_words(pix, w_in, C, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out)``: the
rows of the column matrix from the pixel words: row (b, oy, ox) holds tap
t = ky * kw + kx in bits [t C, (t + 1) C) (k ordered (ky, kx, c)); taps reading
padding stay 0 (level index 0, as ``im2col`` pads). out (P, B * oh * ow, >= ceil(kh kw C / 64)).
``im2col_units``: the same for C a multiple of 8, copying whole 64/32/16/8-bit units.
"""
import numpy as np

try:
    import numba
    from numba import njit
except ImportError:      # pragma: no cover
    numba = None

if numba is not None:
    @njit(inline="always")
    def _level(v, mid):
        """Number of midpoints below v (NaN: all), branch-free."""
        if v != v:
            return mid.shape[0]
        cnt = 0
        for t in range(mid.shape[0]):
            cnt += v > mid[t]
        return cnt

    @njit(inline="always")
    def _levels(v, mid, lev):
        """lev[i] = _level(v[i], mid), thresholds outermost (vectorized)."""
        lev[:] = 0
        for t in range(mid.shape[0]):
            m = mid[t]
            for i in range(v.shape[0]):
                lev[i] += v[i] > m
        for i in range(v.shape[0]):
            if v[i] != v[i]:
                lev[i] = mid.shape[0]

    @njit(inline="always")
    def _bit(idx, p, uniform):
        if uniform:
            return np.uint64((idx >> p) & 1)
        return np.uint64(idx > p)

    @njit(cache=True, nogil=True)
    def pack_rows(x, mid, uniform, out):
        n_p, m, nw = out.shape
        k = x.shape[1]
        lev = np.empty(k, np.uint8)
        for i in range(m):
            _levels(x[i], mid, lev)
            for p in range(n_p):
                for q in range(nw):
                    word = np.uint64(0)
                    for j in range(q * 64, min(k, q * 64 + 64)):
                        word |= _bit(lev[j], p, uniform) << np.uint64(j & 63)
                    out[p, i, q] = word

    @njit(cache=True, nogil=True)
    def pack_pixels(x, mid, uniform, out):
        """x (B, C, H * W) -> out (B, H * W, P, ceil(C / 64)): channel c of a
        pixel is bit c % 64 of word c // 64 (pixels innermost: vectorized)."""
        nb, ch, hw = x.shape
        n_p, cw = out.shape[2], out.shape[3]
        buf = np.empty((n_p, hw), np.uint64)
        lev = np.empty(hw, np.uint8)
        for b in range(nb):
            for q in range(cw):
                buf[...] = 0
                for cc in range(q * 64, min(ch, q * 64 + 64)):
                    sh = np.uint64(cc & 63)
                    _levels(x[b, cc], mid, lev)
                    for p in range(n_p):
                        for i in range(hw):
                            buf[p, i] |= _bit(lev[i], p, uniform) << sh
                for i in range(hw):
                    for p in range(n_p):
                        out[b, i, p, q] = buf[p, i]

    @njit(cache=True, nogil=True)
    def im2col_words(pix, w_in, ch, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
        """Rows of the column matrix from pixel words: tap t = ky * kw + kx
        holds bits [t * ch, (t + 1) * ch) of the row; padding taps stay 0."""
        nb, hw, n_p, cw = pix.shape
        h, wd = hw // w_in, w_in
        nw = out.shape[2]
        buf = np.empty(nw + 1, np.uint64)     # one row, built in cache
        for b in range(nb):
            for oy in range(oh):
                for ox in range(ow):
                    row = (b * oh + oy) * ow + ox
                    for p in range(n_p):
                        buf[:] = 0
                        for ky in range(kh):
                            iy = oy * sh - ph + ky * dh
                            if iy < 0 or iy >= h:
                                continue
                            for kx in range(kw):
                                ix = ox * sw - pw + kx * dw
                                if ix < 0 or ix >= wd:
                                    continue
                                o = (ky * kw + kx) * ch
                                q0, sh0 = o >> 6, np.uint64(o & 63)
                                src = b, iy * wd + ix, p
                                if sh0 == 0:
                                    for q in range(cw):
                                        buf[q0 + q] |= pix[src[0], src[1], src[2], q]
                                else:
                                    for q in range(cw):
                                        v = pix[src[0], src[1], src[2], q]
                                        buf[q0 + q] |= v << sh0
                                        buf[q0 + q + 1] |= v >> (np.uint64(64) - sh0)
                        for q in range(nw):
                            out[p, row, q] = buf[q]

    @njit(cache=True, nogil=True)
    def im2col_units(pix32, w_in, c32, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out32):
        """``im2col_words`` for C a multiple of a unit u (64, 32, 16 or 8 bits), on
        uint<u> views of the words (little-endian: bit j is bit j % u of unit
        j // u): each tap is c32 = C / u whole units, copied without shifts; the
        units past the taps are 0."""
        nb, hw, n_p, _ = pix32.shape
        h, wd = hw // w_in, w_in
        n_half = out32.shape[2]
        for b in range(nb):
            for oy in range(oh):
                for ox in range(ow):
                    row = (b * oh + oy) * ow + ox
                    for p in range(n_p):
                        for ky in range(kh):
                            iy = oy * sh - ph + ky * dh
                            for kx in range(kw):
                                ix = ox * sw - pw + kx * dw
                                o = (ky * kw + kx) * c32
                                if 0 <= iy < h and 0 <= ix < wd:
                                    src = iy * wd + ix
                                    for q in range(c32):
                                        out32[p, row, o + q] = pix32[b, src, p, q]
                                else:
                                    for q in range(c32):
                                        out32[p, row, o + q] = 0
                        for q in range(kh * kw * c32, n_half):
                            out32[p, row, q] = 0
