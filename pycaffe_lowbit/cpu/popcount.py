"""Compiled popcount GEMM and bit packing (Numba) for the packed CPU runtime.

Words are uint64 (bit j of a row lives in word j // 64 at bit j % 64), as in
``deploy.bitops``. The kernels:

``popcount_gemm(a, b, op)``: P (M, N) int32 = sum_w popcount(a[m, w] op b[n, w]),
    op "and" or "xor"; a (M, W), b (N, W). NumPy reference: ``bitops.popcount_gemm``.

``linear(planes, w, ...)``: the whole packed product of ``packed_ops.packed_matmul``
    with its epilogue, in one pass. planes (P, M, W) are the activation bit
    planes b_p; per plane the exact integer D_p[m, n] = <b_p[m], s_n>:

        xnor (sign x binary, P = 1):  D = ((k - 2 xor(b, pos)) + R_n) / 2
        binary weights:               D = 2 and(b, pos) - popcount(b)
        ternary weights:              D = and(b, pos) - and(b, neg)

    then, in float64 and in the reference's order of operations (so the result
    is bit-equal to it):

        uniform codes:  t = float(sum_p D_p << p) * step
        otherwise:      t = sum_p coef_p * float(D_p)
        t = t + base * V[m, n]          (when base != 0; V = R_n or valid[m % L, n])
        y[m // L, n, m % L] = float32(t * alpha_n) (+ bias_n in float32)

``pack_rows(x, mid, ...)``: level index of each value (the number of midpoints
    below it, NaN last, as ``searchsorted(side="left")``), its planes
    (uniform: bit p of the index; thermometer: [index > p]) packed along the last
    axis: x (M, k) -> (P, M, ceil(k / 64)).
``pack_pixels`` / ``im2col_words``: the convolution form. The channels of each
    pixel are packed (x (B, C, H * W) -> (B, H * W, P, Cw), Cw = ceil(C / 64)); a
    row of the column matrix is then the words of its KH x KW taps, copied
    whole (zero words at padding): k is laid out (ky, kx, c) with each tap's
    channels padded with zero bits to Cw words. Zero bits in both operands add
    nothing to and / xor counts, so the weights re-packed in the same layout
    (``tap_major_signs``) give the same integers.

Blocking: 4 rows of A x 4 rows of B per inner loop over the words (16 int64
accumulators, words innermost, which LLVM vectorizes to vpopcntq where the CPU
has AVX512-VPOPCNTDQ); rows of A in blocks over ``prange`` (each output is
computed by one thread from the same words, so the result does not depend on
the thread count). Popcount is LLVM's ctpop (``numba.extending.intrinsic``):
numba 0.68 does not support ``np.bitwise_count``.

``available()``: Numba importable and not turned off with LOWBIT_NUMBA=0.
"""
import os

import numpy as np

try:
    import numba
    from numba import njit, prange, types
    from numba.extending import intrinsic
except ImportError:      # pragma: no cover - exercised by the fallback test
    numba = None

RB = 4   # rows of A per block
CB = 4   # rows of B per block
_CHUNK = 16   # row blocks per parallel task


def available():
    """Numba kernels usable: numba importable and LOWBIT_NUMBA != 0."""
    return numba is not None and os.environ.get("LOWBIT_NUMBA", "1") != "0"


if numba is not None:
    @intrinsic
    def _popc(typingctx, x):
        """popcount of a 64-bit integer (LLVM ctpop), as int64."""
        if not isinstance(x, types.Integer) or x.bitwidth != 64:
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])
        return types.int64(x), codegen

    _V = 8   # words per vector step of the 4 x 4 block kernel (one zmm)

    def _make_block8(opname):
        """Intrinsic: the 16 counts of 4 rows of plane p of a against 4 rows of b over
        their first 8 * nv words, with explicit <8 x i64> loads, ``opname``
        ("and" / "xor"), llvm.ctpop.v8i64 and vector accumulators (LLVM's
        vectorizer alone keeps to 256-bit vectors on this CPU)."""
        from llvmlite import ir
        from numba.core import cgutils

        @intrinsic
        def block8(typingctx, a, p, r0, r1, r2, r3, b, c0, c1, c2, c3, nv):
            if not (isinstance(a, types.Array) and a.ndim == 3 and a.layout == "C"
                    and a.dtype == types.uint64 and isinstance(b, types.Array)
                    and b.ndim == 2 and b.layout == "C" and b.dtype == types.uint64):
                return None
            sig = types.UniTuple(types.int64, 16)(a, p, r0, r1, r2, r3, b, c0, c1, c2, c3, nv)

            def codegen(context, builder, signature, args):
                i64 = ir.IntType(64)
                vec = ir.VectorType(i64, _V)
                vptr = vec.as_pointer()
                ctpop = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(vec, [vec]), "llvm.ctpop.v8i64")
                reduce = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(i64, [vec]), "llvm.vector.reduce.add.v8i64")
                tys = signature.args

                def as64(k):
                    return context.cast(builder, args[k], tys[k], types.int64)
                aa = context.make_array(tys[0])(context, builder, args[0])
                bb = context.make_array(tys[6])(context, builder, args[6])
                _, am, aw = cgutils.unpack_tuple(builder, aa.shape, 3)
                _, bw = cgutils.unpack_tuple(builder, bb.shape, 2)
                plane = builder.mul(as64(1), am)
                ptrs = []
                for k in (2, 3, 4, 5):   # word offset (p * M + r) * W in a
                    off = builder.mul(builder.add(plane, as64(k)), aw)
                    ptrs.append(builder.bitcast(builder.gep(aa.data, [off]), vptr))
                for k in (7, 8, 9, 10):  # c * W in b
                    off = builder.mul(as64(k), bw)
                    ptrs.append(builder.bitcast(builder.gep(bb.data, [off]), vptr))
                nv = as64(11)
                zero = ir.Constant(vec, [0] * _V)
                pre = builder.basic_block
                head = builder.append_basic_block("blk8.head")
                body = builder.append_basic_block("blk8.body")
                done = builder.append_basic_block("blk8.done")
                builder.branch(head)
                builder.position_at_end(head)
                idx = builder.phi(i64)
                idx.add_incoming(ir.Constant(i64, 0), pre)
                accs = []
                for _ in range(16):
                    ph = builder.phi(vec)
                    ph.add_incoming(zero, pre)
                    accs.append(ph)
                builder.cbranch(builder.icmp_signed("<", idx, nv), body, done)
                builder.position_at_end(body)
                xs = [builder.load(builder.gep(q, [idx]), align=8) for q in ptrs[:4]]
                ys = [builder.load(builder.gep(q, [idx]), align=8) for q in ptrs[4:]]
                op = builder.and_ if opname == "and" else builder.xor
                for u in range(4):
                    for v in range(4):
                        cnt = builder.call(ctpop, [op(xs[u], ys[v])])
                        accs[4 * u + v].add_incoming(builder.add(accs[4 * u + v], cnt), body)
                idx.add_incoming(builder.add(idx, ir.Constant(i64, 1)), body)
                builder.branch(head)
                builder.position_at_end(done)
                sums = [builder.call(reduce, [acc]) for acc in accs]
                return context.make_tuple(builder, signature.return_type, sums)
            return sig, codegen
        return block8

    _block8_and = _make_block8("and")
    _block8_xor = _make_block8("xor")

    @njit(inline="always")
    def _block(a, p, r, b, c, nw, xor):
        """4 x 4 counts: rows r[0..3] of plane p of a (P, M, W) against rows
        c[0..3] of b (N, W) (clamped by the caller): 8-word vectors, then the
        tail words one by one. No array views (their reference counts cost
        more than a small block)."""
        nv = nw // _V
        z = np.int64(0)
        s = (z, z, z, z, z, z, z, z, z, z, z, z, z, z, z, z)
        if nv > 0 and xor:
            s = _block8_xor(a, p, r[0], r[1], r[2], r[3], b, c[0], c[1], c[2], c[3], nv)
        elif nv > 0:
            s = _block8_and(a, p, r[0], r[1], r[2], r[3], b, c[0], c[1], c[2], c[3], nv)
        s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33 = s
        for w in range(nv * _V, nw):
            x0, x1, x2, x3 = a[p, r[0], w], a[p, r[1], w], a[p, r[2], w], a[p, r[3], w]
            y0, y1, y2, y3 = b[c[0], w], b[c[1], w], b[c[2], w], b[c[3], w]
            if xor:
                x0, x1, x2, x3 = x0 ^ y0, x1 ^ y0, x2 ^ y0, x3 ^ y0
            else:
                x0, x1, x2, x3 = x0 & y0, x1 & y0, x2 & y0, x3 & y0
            s00 += _popc(x0); s10 += _popc(x1); s20 += _popc(x2); s30 += _popc(x3)  # noqa: E702
            x0, x1, x2, x3 = a[p, r[0], w], a[p, r[1], w], a[p, r[2], w], a[p, r[3], w]
            if xor:
                s01 += _popc(x0 ^ y1); s11 += _popc(x1 ^ y1); s21 += _popc(x2 ^ y1); s31 += _popc(x3 ^ y1)  # noqa: E702,E501
                s02 += _popc(x0 ^ y2); s12 += _popc(x1 ^ y2); s22 += _popc(x2 ^ y2); s32 += _popc(x3 ^ y2)  # noqa: E702,E501
                s03 += _popc(x0 ^ y3); s13 += _popc(x1 ^ y3); s23 += _popc(x2 ^ y3); s33 += _popc(x3 ^ y3)  # noqa: E702,E501
            else:
                s01 += _popc(x0 & y1); s11 += _popc(x1 & y1); s21 += _popc(x2 & y1); s31 += _popc(x3 & y1)  # noqa: E702,E501
                s02 += _popc(x0 & y2); s12 += _popc(x1 & y2); s22 += _popc(x2 & y2); s32 += _popc(x3 & y2)  # noqa: E702,E501
                s03 += _popc(x0 & y3); s13 += _popc(x1 & y3); s23 += _popc(x2 & y3); s33 += _popc(x3 & y3)  # noqa: E702,E501
        return ((s00, s01, s02, s03), (s10, s11, s12, s13), (s20, s21, s22, s23),
                (s30, s31, s32, s33))

    @njit(cache=True)
    def _store(s, cnt):
        """The 4 x 4 tuple of counts into the array ``cnt`` (static indices)."""
        cnt[0, 0] = s[0][0]
        cnt[0, 1] = s[0][1]
        cnt[0, 2] = s[0][2]
        cnt[0, 3] = s[0][3]
        cnt[1, 0] = s[1][0]
        cnt[1, 1] = s[1][1]
        cnt[1, 2] = s[1][2]
        cnt[1, 3] = s[1][3]
        cnt[2, 0] = s[2][0]
        cnt[2, 1] = s[2][1]
        cnt[2, 2] = s[2][2]
        cnt[2, 3] = s[2][3]
        cnt[3, 0] = s[3][0]
        cnt[3, 1] = s[3][1]
        cnt[3, 2] = s[3][2]
        cnt[3, 3] = s[3][3]

    @njit(inline="always")
    def _clamp4(i, n):
        return (i, min(i + 1, n - 1), min(i + 2, n - 1), min(i + 3, n - 1))

    @njit(cache=True, parallel=True, nogil=True)
    def _gemm(a, b, xor, out):
        m, n, nw = a.shape[1], b.shape[0], a.shape[2]
        for bi in prange((m + RB - 1) // RB):
            i = bi * RB
            r = _clamp4(i, m)
            for j in range(0, n, CB):
                c = _clamp4(j, n)
                s = _block(a, 0, r, b, c, nw, xor)
                for u in range(min(RB, m - i)):
                    for v in range(min(CB, n - j)):
                        out[i + u, j + v] = s[u][v]

    @njit(cache=True, parallel=True, nogil=True)
    def _linear(planes, pos, neg, mode, k, row_sums, uniform, step, coefs, base,
                valid, alpha, bias, out):
        """See the module docstring; mode 0 xnor, 1 binary, 2 ternary; valid
        (L, N) int64 or (0, 0): V = row sums; bias (N,) or (0,)."""
        n_p, m, nw = planes.shape
        n = pos.shape[0]
        length = out.shape[2]
        has_valid = valid.shape[0] > 0
        has_bias = bias.shape[0] > 0
        n_blocks = (m + RB - 1) // RB
        n_chunks = (n_blocks + _CHUNK - 1) // _CHUNK
        for ci in prange(n_chunks):   # scratch allocated once per chunk of row blocks
            ones = np.zeros((n_p, RB), np.int64)
            iacc = np.zeros((RB, CB), np.int64)
            facc = np.zeros((RB, CB), np.float64)
            cnt = np.zeros((RB, CB), np.int64)
            cntn = np.zeros((RB, CB), np.int64)
            for bi in range(ci * _CHUNK, min(n_blocks, (ci + 1) * _CHUNK)):
                i = bi * RB
                r = _clamp4(i, m)
                if mode == 1:
                    for p in range(n_p):
                        for u in range(RB):
                            t = np.int64(0)
                            for w in range(nw):
                                t += _popc(planes[p, r[u], w])
                            ones[p, u] = t
                for j in range(0, n, CB):
                    c = _clamp4(j, n)
                    iacc[...] = 0
                    facc[...] = 0
                    for p in range(n_p):
                        _store(_block(planes, p, r, pos, c, nw, mode == 0), cnt)
                        if mode == 2:
                            _store(_block(planes, p, r, neg, c, nw, False), cntn)
                        for u in range(RB):
                            for v in range(CB):
                                if mode == 0:
                                    d = (k - 2 * cnt[u, v] + row_sums[c[v]]) >> 1
                                elif mode == 1:
                                    d = 2 * cnt[u, v] - ones[p, u]
                                else:
                                    d = cnt[u, v] - cntn[u, v]
                                if uniform:
                                    iacc[u, v] += d << p
                                else:
                                    facc[u, v] = facc[u, v] + coefs[p] * np.float64(d)
                    for u in range(min(RB, m - i)):
                        row = i + u
                        img, pix = row // length, row % length
                        for v in range(min(CB, n - j)):
                            col = j + v
                            if uniform:
                                t = np.float64(iacc[u, v]) * step
                            else:
                                t = facc[u, v]
                            if base != 0:
                                vv = valid[pix, col] if has_valid else row_sums[col]
                                t = t + base * np.float64(vv)
                            y = np.float32(t * alpha[col])
                            if has_bias:
                                y = y + bias[col]
                            out[img, col, pix] = y

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
    def _pack_rows(x, mid, uniform, out):
        n_p, m, nw = out.shape
        k = x.shape[1]
        out[...] = 0
        for i in range(m):
            for p in range(n_p):
                for q in range((k + 63) >> 6):
                    word = np.uint64(0)
                    for j in range(q * 64, min(k, q * 64 + 64)):
                        word |= _bit(_level(x[i, j], mid), p, uniform) << np.uint64(j & 63)
                    out[p, i, q] = word

    @njit(cache=True, nogil=True)
    def _pack_pixels(x, mid, uniform, out):
        """x (B, C, H * W) -> out (B, H * W, P, ceil(C / 64)): channel c of a
        pixel is bit c % 64 of word c // 64 (pixels innermost: vectorized)."""
        nb, ch, hw = x.shape
        n_p, cw = out.shape[2], out.shape[3]
        buf = np.empty(hw, np.uint64)
        lev = np.empty(hw, np.uint8)
        for b in range(nb):
            for q in range(cw):
                for p in range(n_p):
                    buf[:] = 0
                    for cc in range(q * 64, min(ch, q * 64 + 64)):
                        sh = np.uint64(cc & 63)
                        _levels(x[b, cc], mid, lev)
                        for i in range(hw):
                            buf[i] |= _bit(lev[i], p, uniform) << sh
                    for i in range(hw):
                        out[b, i, p, q] = buf[i]

    @njit(cache=True, nogil=True)
    def _im2col_words(pix, w_in, ch, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
        """Rows of the column matrix from pixel words: tap t = ky * kw + kx
        holds bits [t * ch, (t + 1) * ch) of the row; padding taps stay 0."""
        nb, hw, n_p, cw = pix.shape
        h, wd = hw // w_in, w_in
        out[...] = 0
        for b in range(nb):
            for oy in range(oh):
                for ox in range(ow):
                    row = (b * oh + oy) * ow + ox
                    for ky in range(kh):
                        iy = oy * sh - ph + ky * dh
                        if iy < 0 or iy >= h:
                            continue
                        for kx in range(kw):
                            ix = ox * sw - pw + kx * dw
                            if ix < 0 or ix >= wd:
                                continue
                            o = (ky * kw + kx) * ch
                            q0, sh0 = o >> 6, o & 63
                            for p in range(n_p):
                                for q in range(cw):
                                    v = pix[b, iy * wd + ix, p, q]
                                    out[p, row, q0 + q] |= v << np.uint64(sh0)
                                    if sh0 and q0 + q + 1 < out.shape[2]:
                                        out[p, row, q0 + q + 1] |= v >> np.uint64(64 - sh0)


def popcount_gemm(a, b, op="xor"):
    """P (M, N) int32 = sum_w popcount(a[m, w] op b[n, w]) (compiled)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError("popcount_gemm: %d words per row against %d"
                         % (a.shape[1], b.shape[1]))
    out = np.empty((a.shape[0], b.shape[0]), np.int32)
    if out.size:
        _gemm(np.ascontiguousarray(a)[None], np.ascontiguousarray(b), op == "xor", out)
    return out
