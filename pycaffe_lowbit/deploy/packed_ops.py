"""The packed arithmetic: quantized weights as bits times coded activations.

Weights of one layer, rows n = 1..N of k elements (k = C/g * prod(kernel), or
the input size of an inner product), are ``alpha_n * s_n`` with

    binary   s_nj in {-1, +1}: one bit plane  pos = [s = +1]
    ternary  s_nj in {-1, 0, +1}: two planes  pos = [s = +1], neg = [s = -1]

Activations from a quantizer take a few levels l_0 < l_1 < ... < l_L. Each
value is coded by its level index i (0 at padding) and written as

    y = base + sum_p coef_p * b_p,   b_p in {0, 1}

    uniform levels (l_i = l_0 + i d, exactly in float32): b_p = bit p of i,
        coef_p = d 2^p  (HWGQ "3ne": 2 planes);
    otherwise (thermometer): b_p = [i >= p], coef_p = l_p - l_(p-1)
        (HWGQ "2n": 2 planes; sign: 1 plane, base -1, coef 2).

With D_p[m, n] = <s_n, b_p[m]> (exact integers, from popcounts:
2 and(b, pos) - popcount(b) for binary, and(b, pos) - and(b, neg) for
ternary; for sign activations on binary weights the xnor form
k - 2 xor(a, pos) is used instead) the output is

    y[m, n] = alpha_n * (base * V[m, n] + sum_p coef_p D_p[m, n]) + bias_n

where V[m, n] = sum of s_nj over the positions j that are not padding (the
row sum for an inner product). For uniform codes the sum over p is done in
integers (sum_p 2^p D_p) and scaled once by d, so the integer part equals the
unpacked integer matrix product exactly.
"""
import numpy as np

from ..core import backend
from . import bitops


class ActivationCoding:
    """Level set of a quantized activation and its bit-plane code."""

    def __init__(self, levels):
        levels = np.asarray(sorted(float(v) for v in levels), np.float32)
        if len(levels) < 2 or len(np.unique(levels)) != len(levels):
            raise ValueError("an activation code needs at least two distinct levels, got %s"
                             % list(levels))
        self.levels = levels
        self.base = float(levels[0])
        self.midpoints = (levels[:-1] + levels[1:]) / np.float32(2)
        n = len(levels) - 1
        d = levels[1] - levels[0]
        steps = levels[0] + d * np.arange(n + 1, dtype=np.float32)
        self.uniform = n > 1 and bool(np.array_equal(steps, levels))
        if self.uniform:
            self.step = float(d)
            self.n_planes = int(n).bit_length()
            self.coefs = [float(d) * 2 ** p for p in range(self.n_planes)]
        else:
            self.n_planes = n
            self.coefs = [float(levels[p] - levels[p - 1]) for p in range(1, n + 1)]
        self.is_sign = n == 1

    def index(self, x):
        """Level index (uint8) of each value of ``x``: the nearest level."""
        xp = backend.get_array_module(x)
        return xp.searchsorted(xp.asarray(self.midpoints), x, side="left").astype(xp.uint8)

    def planes(self, idx):
        """The 0/1 planes b_p of level indices ``idx`` (same shape)."""
        if self.uniform:
            return [(idx >> p) & 1 for p in range(self.n_planes)]
        return [idx >= p for p in range(1, self.n_planes + 1)]


class PackedWeights:
    """One layer's quantized weights as bit planes: ``alpha`` (N,) float32,
    ``pos`` (and ``neg`` for ternary) (N, ceil(k / 64)) uint64, ``k``."""

    def __init__(self, alpha, pos, neg, k, shape):
        self.alpha, self.pos, self.neg, self.k, self.shape = alpha, pos, neg, int(k), tuple(shape)
        self.ternary = neg is not None
        xp = backend.get_array_module(pos)
        self.row_sums = xp.asarray(self.signs().sum(axis=1, dtype=np.int64))

    def to(self, xp):
        """These weights with their arrays on ``xp`` (numpy or cupy)."""
        move = (lambda a: None if a is None else backend.to_device(a, xp))
        return PackedWeights(move(self.alpha), move(self.pos), move(self.neg), self.k,
                             self.shape)

    @classmethod
    def from_signs(cls, alpha, s, shape, ternary=None):
        """From alpha (N,) and s (N, k) in {-1, 0, +1}; ``ternary`` defaults
        to whether s has a zero."""
        xp = backend.get_array_module(s)
        if ternary is None:
            ternary = bool((s == 0).any())
        neg = bitops.pack_bits(s < 0) if ternary else None
        return cls(xp.asarray(alpha, xp.float32), bitops.pack_bits(s > 0), neg,
                   s.shape[1], shape)

    def signs(self):
        """s (N, k) int8 unpacked from the planes, on the host."""
        s = bitops.unpack_bits(backend.to_numpy(self.pos), self.k).astype(np.int8)
        if self.ternary:
            return s - bitops.unpack_bits(backend.to_numpy(self.neg), self.k).astype(np.int8)
        return 2 * s - 1

    def dense(self):
        """alpha_n * s_n as float32 (N, k), on the host."""
        return backend.to_numpy(self.alpha)[:, None] * self.signs().astype(np.float32)

    def nbytes(self):
        return (self.pos.nbytes + (self.neg.nbytes if self.ternary else 0)
                + self.alpha.nbytes)


def plane_dots(words, weights, n_ones):
    """D (M, N) int64 = <b_m, s_n> for one plane packed as ``words`` (M, W);
    ``n_ones`` (M,) = popcount of each row of the plane."""
    if weights.ternary:
        return (bitops.popcount_gemm(words, weights.pos, "and").astype(np.int64)
                - bitops.popcount_gemm(words, weights.neg, "and"))
    return (2 * bitops.popcount_gemm(words, weights.pos, "and").astype(np.int64)
            - n_ones[:, None])


def integer_dots(idx_rows, coding, weights):
    """The integer products of coded activation rows ``idx_rows`` (M, k) uint8
    and the weight signs: for uniform codes one (M, N) int64 array
    sum_p 2^p D_p; otherwise the list of D_p."""
    xp = backend.get_array_module(idx_rows)
    dots = []
    for p, plane in enumerate(coding.planes(idx_rows)):
        words = bitops.pack_bits(plane)
        if coding.is_sign and not weights.ternary:
            # xnor: sum_j s_j (2 b_j - 1) = k - 2 xor  =>  <s, b> = (that + R) / 2
            xnor = weights.k - 2 * bitops.popcount_gemm(words, weights.pos, "xor").astype(
                xp.int64)
            dots.append((xnor + weights.row_sums[None, :]) // 2)
        else:
            n_ones = bitops.popcount(words).sum(axis=1, dtype=xp.int64)
            dots.append(plane_dots(words, weights, n_ones))
    if coding.uniform:
        return sum(d << p for p, d in enumerate(dots))
    return dots


def packed_matmul(idx_rows, coding, weights, valid_sums=None):
    """y (M, N) float32 = alpha_n (base V + sum_p coef_p D_p), without bias.
    ``valid_sums`` (M, N) or None: V, the sign sums over non-padding inputs
    (None: every input is real, V = the row sums)."""
    xp = backend.get_array_module(idx_rows)
    dots = integer_dots(idx_rows, coding, weights)
    if coding.uniform:
        acc = dots.astype(xp.float64) * coding.step
    else:
        acc = sum(c * d.astype(xp.float64) for c, d in zip(coding.coefs, dots))
    if coding.base != 0:
        v = weights.row_sums[None, :] if valid_sums is None else valid_sums
        acc = acc + coding.base * v
    return (acc * weights.alpha.astype(xp.float64)[None, :]).astype(xp.float32)
