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
and add, which NumPy does without a Python loop over M or N. GPU: the
``lowbit_popcount_gemm`` RawKernel, one thread per (m, n), ``__popcll`` per word.
"""
import numpy as np

from ..core import backend

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
    xp = backend.get_array_module(bits)
    k = bits.shape[-1]
    by = xp.packbits(bits.astype(xp.bool_), axis=-1, bitorder="little")
    pad = n_words(k) * 8 - by.shape[-1]
    if pad:
        by = xp.concatenate([by, xp.zeros(by.shape[:-1] + (pad,), xp.uint8)], axis=-1)
    return xp.ascontiguousarray(by).view("<u8").astype(xp.uint64, copy=False)


def unpack_bits(words, k):
    """uint64 words (..., W) -> uint8 0/1 array (..., k)."""
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
    xp = backend.get_array_module(a, b)
    if xp is not np:
        return _gpu_popcount_gemm(a, b, op, xp)
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


_KERNEL = r"""
extern "C" __global__ void lowbit_popcount_gemm(
        const unsigned long long* a, const unsigned long long* b, int* out,
        int m, int n, int w, int use_xor) {
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m || j >= n) return;
    const unsigned long long* ra = a + (long long)i * w;
    const unsigned long long* rb = b + (long long)j * w;
    int s = 0;
    for (int k = 0; k < w; ++k)
        s += __popcll(use_xor ? (ra[k] ^ rb[k]) : (ra[k] & rb[k]));
    out[(long long)i * n + j] = s;
}
"""
_kernel_cache = {}


def _gpu_popcount_gemm(a, b, op, cp):  # pragma: no cover - needs a GPU
    kernel = _kernel_cache.get("k")
    if kernel is None:
        kernel = _kernel_cache["k"] = cp.RawKernel(_KERNEL, "lowbit_popcount_gemm")
    a = cp.ascontiguousarray(a, dtype=cp.uint64)
    b = cp.ascontiguousarray(b, dtype=cp.uint64)
    m, n, w = a.shape[0], b.shape[0], a.shape[1]
    out = cp.empty((m, n), cp.int32)
    block = (32, 8)
    grid = ((n + 31) // 32, (m + 7) // 8)
    kernel(grid, block, (a, b, out, np.int32(m), np.int32(n), np.int32(w),
                         np.int32(op == "xor")))
    return out
