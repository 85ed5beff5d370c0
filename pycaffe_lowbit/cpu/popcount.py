"""Compiled popcount GEMM (Numba) for the packed CPU runtime.

Words are uint64 (bit j of a row lives in word j // 64 at bit j % 64), as in
``deploy.bitops``; packing is in ``cpu.pack``.

``popcount_gemm(a, b, op)``: P (M, N) int32 = sum_w popcount(a[m, w] op b[n, w]),
    op "and" or "xor"; a (M, W), b (N, W). NumPy reference: ``bitops.popcount_gemm``.

``linear(planes, bt, ...)`` (``_linear``): the whole packed product of
    ``packed_ops.packed_matmul`` with its epilogue, in one pass. planes (P, M, W)
    are the activation bit planes b_p; per plane the exact integer
    D_p[m, n] = <b_p[m], s_n>:

        xnor (sign x binary, P = 1):  D = ((k - 2 xor(b, pos)) + R_n) / 2
        binary weights:               D = 2 and(b, pos) - popcount(b)
        ternary weights:              D = and(b, pos) - and(b, neg)

    then, in float64 and in the reference's order of operations (so the result
    is bit-equal to it):

        uniform codes:  t = float(sum_p D_p << p) * step
        otherwise:      t = sum_p coef_p * float(D_p)
        t = t + base * V[m, n]          (when base != 0; V = R_n or valid[m % L, n])
        y[m // L, n, m % L] = float32(t * alpha_n) (+ bias_n in float32)

Kernel: the weights are stored transposed in panels of 32 columns, each
(W, 32) contiguous, N padded to a multiple of 32 by zero columns
(``transpose_words``). A block is 4 rows of A x 32
columns: for each word w, each row's word is broadcast and and/xor'ed with the 32
columns (4 vectors of 8 words), counted with llvm.ctpop.v8i64 (vpopcntq on
AVX512-VPOPCNTDQ; plain popcnt otherwise) and added to 16 vector accumulators
(written as LLVM IR by an intrinsic: Numba's own vectorizer keeps to 256-bit
vectors and to reductions along the words). No horizontal sums, no padding of
W. Row blocks run in chunks over ``prange``; each output is computed by one
thread from the same words, so the result does not depend on the thread count.
The scalar popcount is LLVM's ctpop too (numba 0.68 has no ``np.bitwise_count``).

``available()``: Numba importable and not turned off with LOWBIT_NUMBA=0.
"""

import numpy as np

try:
    import numba
    from numba import njit, prange
except ImportError:      # pragma: no cover - exercised by the fallback test
    numba = None

from . import jit
from .popcount_ir import CB, RB   # rows of A x columns (weights) per block
_CHUNK = 16   # row blocks per parallel task


def available():
    """Numba kernels usable (``jit.enabled()``) and this module's imported."""
    return numba is not None and jit.enabled()


def pad_columns(v, dtype):
    """v (N,) as ``dtype``, zero-padded to N rounded up to CB."""
    out = np.zeros(-(-len(v) // CB) * CB, dtype)
    out[:len(v)] = v
    return out


def transpose_words(b):
    """b (N, W) uint64 -> panels of 32 columns, (N32 / 32 * W, 32): panel q
    (rows q W .. q W + W - 1) holds b[32 q + v, w] at [q W + w, v]; N32 = N
    rounded up to CB, the extra columns 0. Each block of the kernel reads
    one contiguous panel."""
    n, w = b.shape
    n32 = -(-n // CB) * CB
    full = np.zeros((n32, w), np.uint64)
    full[:n] = b
    return np.ascontiguousarray(full.reshape(n32 // CB, CB, w).transpose(0, 2, 1)).reshape(-1, CB)


if numba is not None:
    from .popcount_ir import _make_cols_block, _make_cols_scaled, _popc

    _cols_and = _make_cols_block("and")
    _cols_xor = _make_cols_block("xor")
    _scaled_and = _make_cols_scaled(False, False)
    _scaled_and_bias = _make_cols_scaled(False, True)
    _scaled_xor = _make_cols_scaled(True, False)
    _scaled_xor_bias = _make_cols_scaled(True, True)

    @njit(inline="always")
    def _counts(a, p0, p1, i, m, bt, j, xor, cnt):
        """cnt (4, 32) = sum_{p0 <= p < p1} 2^(p - p0) counts of rows i..i+3 of
        plane p (clamped to m - 1) against columns j..j+31."""
        r1, r2, r3 = min(i + 1, m - 1), min(i + 2, m - 1), min(i + 3, m - 1)
        if xor:
            _cols_xor(a, p0, p1, i, r1, r2, r3, bt, j, cnt)
        else:
            _cols_and(a, p0, p1, i, r1, r2, r3, bt, j, cnt)

    @njit(cache=True, parallel=True, nogil=True)
    def _gemm(a, bt, n, xor, out):
        m = a.shape[1]
        n_blocks = (m + RB - 1) // RB
        for ci in prange((n_blocks + _CHUNK - 1) // _CHUNK):
            cnt = np.empty((RB, CB), np.int64)
            for bi in range(ci * _CHUNK, min(n_blocks, (ci + 1) * _CHUNK)):
                i = bi * RB
                for j in range(0, n, CB):
                    _counts(a, 0, 1, i, m, bt, j, xor, cnt)
                    for u in range(min(RB, m - i)):
                        for v in range(min(CB, n - j)):
                            out[i + u, j + v] = cnt[u, v]

    @njit(cache=True, parallel=True, nogil=True)
    def _linear(planes, pos_t, neg_t, n, mode, k, row_sums, uniform, step, coefs, base,
                valid, alpha, bias, out):
        """See the module docstring; mode 0 xnor, 1 binary, 2 ternary; pos_t /
        neg_t transposed (``transpose_words``; neg_t unused unless ternary);
        valid (L, N) int64 or (0, 0): V = row sums; bias (N,) or (0,). With
        row_sums, alpha, bias and the rows of valid padded to N32 (``pad_columns``),
        binary x uniform and xnor products are finished in vectors."""
        n_p, m, nw = planes.shape
        length = out.shape[2]
        has_valid = valid.shape[0] > 0
        has_bias = bias.shape[0] > 0
        fused = uniform and mode != 0
        n32 = (n + CB - 1) // CB * CB
        padded = (alpha.shape[0] >= n32 and row_sums.shape[0] >= n32
                  and (not has_bias or bias.shape[0] >= n32)
                  and (not has_valid or valid.shape[1] >= n32))
        scaled = padded and ((fused and mode == 1) or (mode == 0 and n_p == 1 and not uniform))
        vmat = valid if has_valid else row_sums.reshape((1, row_sums.shape[0]))
        mult = step if mode != 0 else coefs[0]
        n_blocks = (m + RB - 1) // RB
        for ci in prange((n_blocks + _CHUNK - 1) // _CHUNK):
            ones = np.zeros((n_p, _CHUNK * RB), np.int64)
            iacc = np.zeros((RB, CB), np.int64)
            facc = np.zeros((RB, CB), np.float64)
            cnt = np.empty((RB, CB), np.int64)
            cntn = np.empty((RB, CB), np.int64)
            yout = np.empty((RB, CB), np.float32)
            b_lo, b_hi = ci * _CHUNK, min(n_blocks, (ci + 1) * _CHUNK)
            r_lo = b_lo * RB
            if mode == 1:
                for p in range(n_p):
                    for u in range(min(m, b_hi * RB) - r_lo):
                        t = np.int64(0)
                        for w in range(nw):
                            t += _popc(planes[p, r_lo + u, w])
                        ones[p, u] = t
                if fused:      # uniform code: all planes in one count
                    for u in range(min(m, b_hi * RB) - r_lo):
                        t = np.int64(0)
                        for p in range(n_p):
                            t += ones[p, u] << p
                        ones[0, u] = t
            # columns outermost in a chunk: the 32 weight columns stay in L1 and
            # each output line is written whole, row block after row block
            for j in range(0, n, CB):
                for bi in range(b_lo, b_hi):
                    i = bi * RB
                    if scaled:     # binary x uniform code, or xnor: all in vectors
                        r1, r2, r3 = min(i + 1, m - 1), min(i + 2, m - 1), min(i + 3, m - 1)
                        q = i - r_lo
                        if mode == 0 and has_bias:
                            _scaled_xor_bias(planes, 0, 1, i, r1, r2, r3, pos_t, j, ones, q, mult,
                                             k, row_sums, vmat, has_valid, length, base, alpha,
                                             bias, yout)
                        elif mode == 0:
                            _scaled_xor(planes, 0, 1, i, r1, r2, r3, pos_t, j, ones, q, mult, k,
                                        row_sums, vmat, has_valid, length, base, alpha, bias,
                                        yout)
                        elif has_bias:
                            _scaled_and_bias(planes, 0, n_p, i, r1, r2, r3, pos_t, j, ones, q,
                                             mult, k, row_sums, vmat, has_valid, length, base,
                                             alpha, bias, yout)
                        else:
                            _scaled_and(planes, 0, n_p, i, r1, r2, r3, pos_t, j, ones, q, mult,
                                        k, row_sums, vmat, has_valid, length, base, alpha, bias,
                                        yout)
                        nv = min(CB, n - j)
                        for u in range(min(RB, m - i)):
                            row = i + u
                            img = row // length
                            pix = row - img * length
                            for v in range(nv):
                                out[img, j + v, pix] = yout[u, v]
                        continue
                    if fused:
                        _counts(planes, 0, n_p, i, m, pos_t, j, False, cnt)
                        if mode == 2:
                            _counts(planes, 0, n_p, i, m, neg_t, j, False, cntn)
                        for u in range(RB):
                            for v in range(CB):
                                if mode == 1:
                                    iacc[u, v] = 2 * cnt[u, v] - ones[0, min(i + u, m - 1)
                                                                       - r_lo]
                                else:
                                    iacc[u, v] = cnt[u, v] - cntn[u, v]
                    else:
                        iacc[...] = 0
                        facc[...] = 0
                    for p in range(0 if not fused else n_p, n_p):
                        _counts(planes, p, p + 1, i, m, pos_t, j, mode == 0, cnt)
                        if mode == 2:
                            _counts(planes, p, p + 1, i, m, neg_t, j, False, cntn)
                        for u in range(RB):
                            for v in range(CB):
                                if mode == 0:
                                    d = (k - 2 * cnt[u, v] + row_sums[min(j + v, n - 1)]) >> 1
                                elif mode == 1:
                                    d = 2 * cnt[u, v] - ones[p, min(i + u, m - 1) - r_lo]
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


def popcount_gemm(a, b, op="xor"):
    """P (M, N) int32 = sum_w popcount(a[m, w] op b[n, w]) (compiled)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError("popcount_gemm: %d words per row against %d"
                         % (a.shape[1], b.shape[1]))
    out = np.empty((a.shape[0], b.shape[0]), np.int32)
    if out.size:
        _gemm(np.ascontiguousarray(a, np.uint64)[None], transpose_words(b), b.shape[0],
              op == "xor", out)
    return out
