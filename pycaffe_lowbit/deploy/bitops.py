"""Bit packing and popcount GEMMs on 64-bit words.

Packing: a 0/1 array (..., k) becomes uint64 words (..., ceil(k / 64)); element
j lives in word j // 64 at bit j % 64 (bit 0 = least significant), and the bits
past k in the last word are 0. ``unpack_bits`` is the inverse.

Popcount GEMM of A (M, W) and B (N, W) words:

    and:  P[m, n] = sum_w popcount(A[m, w] & B[n, w])   (= <a_m, b_n> of 0/1 rows)
    xor:  P[m, n] = sum_w popcount(A[m, w] ^ B[n, w])   (= Hamming distance)

For ±1 rows of length k coded as bits (1 = +1) the xnor identity gives
<a, b> = k - 2 * xor(a, b); the zero bits past k agree in both rows and add
nothing. For ±1 weights s and a 0/1 plane b, <s, b> = 2 * and(b, s) - popcount(b).

CPU: NumPy's ``bitwise_count`` (NumPy >= 2.0) or a SWAR fallback. The GEMM
loops over the W words (k / 64, small), each step one (M, N) xor/and, count
and add, which NumPy does without a Python loop over M or N. GPU (and under
``kernels.emulate()``): the kernels of ``kernels/bitpack.cu`` (packing one
thread per word, the GEMM one thread per (m, n) with ``__popcll`` per word).
"""
import numpy as np

from ..core import backend
from ..kernels import bitpack as kbits

_M1, _M2, _M4, _H01 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333),
                       np.uint64(0x0F0F0F0F0F0F0F0F), np.uint64(0x0101010101010101))


def _swar_popcount(x, xp):
    """Population count of uint64 words without bitwise_count (Hacker's Delight)."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return ((x * _H01) >> np.uint64(56)).astype(xp.uint8)


def popcount(x, out=None):
    """Bits set in each uint64 word, as uint8."""
    if x.dtype == np.uint64 and kbits.runs(x):
        return kbits.popcount(x, out)
    xp = backend.get_array_module(x)
    count = getattr(xp, "bitwise_count", None)
    if count is not None:
        return count(x, out=out) if out is not None else count(x)
    result = _swar_popcount(x, xp)
    if out is None:
        return result
    out[...] = result
    return out


def n_words(k):
    return (int(k) + 63) // 64


def pack_bits(bits):
    """0/1 (or bool) array (..., k) -> uint64 words (..., ceil(k / 64))."""
    if kbits.runs(bits):
        return kbits.pack_bits(bits)
    xp = backend.get_array_module(bits)
    k = bits.shape[-1]
    by = xp.packbits(bits.astype(xp.bool_), axis=-1, bitorder="little")
    pad = n_words(k) * 8 - by.shape[-1]
    if pad:
        by = xp.concatenate([by, xp.zeros(by.shape[:-1] + (pad,), xp.uint8)], axis=-1)
    return xp.ascontiguousarray(by).view("<u8").astype(xp.uint64, copy=False)


def unpack_bits(words, k):
    """uint64 words (..., W) -> uint8 0/1 array (..., k)."""
    if kbits.runs(words):
        return kbits.unpack_bits(words, k)
    xp = backend.get_array_module(words)
    by = xp.ascontiguousarray(words).astype("<u8", copy=False).view(xp.uint8)
    return xp.unpackbits(by, axis=-1, bitorder="little")[..., :int(k)]   # CuPy: no count=


# Rows of A per step: bounds the (rows, N) temporaries (2 MB of uint64: near cache).
_STEP_ELEMS = 1 << 18


def popcount_gemm(a, b, op="xor"):
    """P (M, N) int32 = sum over words of popcount(a[m] op b[n]); ``op`` is
    "xor" or "and"; a (M, W) and b (N, W) uint64."""
    if a.shape[1] != b.shape[1]:
        raise ValueError("popcount_gemm: %d words per row against %d"
                         % (a.shape[1], b.shape[1]))
    if kbits.runs(a, b):
        return kbits.popcount_gemm(a, b, op)
    fn = {"xor": np.bitwise_xor, "and": np.bitwise_and}[op]
    m, n, w = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((m, n), np.int32)
    bt = np.ascontiguousarray(b.T)
    acc_type = np.uint16 if w * 64 < (1 << 16) else np.int32
    step = max(1, min(m, _STEP_ELEMS // max(n, 1)))
    tmp = np.empty((step, n), np.uint64)
    cnt = np.empty((step, n), np.uint8)
    acc = np.empty((step, n), acc_type)
    for i in range(0, m, step):
        rows = min(step, m - i)
        t, c, s = tmp[:rows], cnt[:rows], acc[:rows]
        s[...] = 0
        for j in range(w):
            fn(a[i:i + rows, j, None], bt[j][None, :], out=t)
            popcount(t, out=c)
            s += c
        out[i:i + rows] = s
    return out

