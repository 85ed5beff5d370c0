"""Launches of ``bitpack.cu`` for ``deploy/bitops.py``: packing 0/1 rows into
uint64 words, unpacking, popcount and the popcount GEMM, on arrays. Each
returns exactly what bitops' NumPy path returns (the same integers), as a
C-contiguous array.

``runs(*arrays)``: whether bitops takes this path (a CuPy array, or any array
under ``emulate()``).
"""
import numpy as np

from ..core import backend
from .emulation import enabled as _emulated
from .loader import launch

FAMILY = "bitpack"
_OPS = {"xor": 1, "and": 0}


def runs(*arrays):
    return _emulated() or backend.get_array_module(*arrays) is not np


def _rows(shape):
    return int(np.prod(shape[:-1], dtype=np.int64))


def pack_bits(bits):
    """0/1 (any dtype: nonzero is 1) (..., k) -> uint64 words (..., ceil(k / 64))."""
    xp = backend.get_array_module(bits)
    if bits.dtype != np.bool_ and bits.dtype != np.uint8:
        bits = bits != 0
    bits = xp.ascontiguousarray(bits)
    if bits.dtype == np.bool_:
        bits = bits.view(np.uint8)
    k = bits.shape[-1]
    per_row = (k + 63) // 64
    words = xp.empty(bits.shape[:-1] + (per_row,), np.uint64)
    launch(FAMILY, "lowbit_pack_bits", words.size, words.size, k, per_row, bits, words)
    return words


def unpack_bits(words, k):
    """uint64 words (..., W) -> uint8 0/1 (..., min(k, 64 W))."""
    xp = backend.get_array_module(words)
    words = xp.ascontiguousarray(words, dtype=np.uint64)
    per_row = words.shape[-1]
    k = min(int(k), 64 * per_row)
    bits = xp.empty(words.shape[:-1] + (k,), np.uint8)
    launch(FAMILY, "lowbit_unpack_bits", bits.size, bits.size, k, per_row, words, bits)
    return bits


def popcount(words, out=None):
    """Bits set in each uint64 word, as uint8 (into ``out`` when given)."""
    xp = backend.get_array_module(words)
    words = xp.ascontiguousarray(words)
    target = out if (out is not None and out.dtype == np.uint8 and out.flags.c_contiguous
                     and out.shape == words.shape) else xp.empty(words.shape, np.uint8)
    launch(FAMILY, "lowbit_popcount", words.size, words.size, words, target)
    if out is not None and out is not target:
        out[...] = target
        return out
    return target


def popcount_gemm(a, b, op):
    """P (M, N) int32 = sum over words of popcount(a[m] op b[n]); op "xor" or "and"."""
    xp = backend.get_array_module(a, b)
    use_xor = _OPS[op]
    a = xp.ascontiguousarray(a, dtype=np.uint64)
    b = xp.ascontiguousarray(b, dtype=np.uint64)
    out = xp.empty((a.shape[0], b.shape[0]), np.int32)
    launch(FAMILY, "lowbit_popcount_gemm", out.size, out.size, b.shape[0], a.shape[1], a, b,
           use_xor, out)
    return out
