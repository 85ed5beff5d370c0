"""The packed layers' compiled CPU path (``cpu.popcount``): packing, popcount
GEMM and epilogue in three Numba calls, bit-equal to ``packed_ops.packed_matmul``
plus the bias.

``FastPlan(weights, coding, bias, conv=None)`` holds what the kernels read:
the weight bit planes re-laid for the packed activations (transposed, see
``popcount.transpose_words``; for a convolution k is ordered (ky, kx, c) to
match ``pack.im2col_words``), alpha and the coefficients in float64, the row sums, the
bias. ``usable(xp, group)``: the compiled path runs (NumPy arrays, Numba
available and not turned off with LOWBIT_NUMBA=0, one group).
"""
import numpy as np

from ..cpu import pack as kpack
from ..cpu import popcount as kpop
from ..kernels import bitpack as kbits
from . import bitops


def usable(xp, group=1):
    """NumPy arrays, one group, Numba on, and not under ``kernels.emulate()``
    (which runs the CUDA kernels of bitpack.cu on the host instead)."""
    return xp is np and group == 1 and kpop.available() and not kbits.runs(
        np.zeros(0, np.uint64))


class FastPlan:
    """Weights (N, k) as ``PackedWeights``; ``conv`` None for an inner
    product, else the weight shape (N, C, KH, KW)."""

    def __init__(self, weights, coding, bias, conv=None):
        s = weights.signs()
        if conv is not None:
            s = s.reshape(conv).transpose(0, 2, 3, 1).reshape(conv[0], -1)
        self.k = int(weights.k)
        self.nw = bitops.n_words(self.k)
        self.n = int(s.shape[0])
        self.pos = kpop.transpose_words(bitops.pack_bits(s > 0))
        self.neg = kpop.transpose_words(bitops.pack_bits(s < 0)) if weights.ternary \
            else np.zeros((self.nw, 0), np.uint64)
        self.mode = 0 if (coding.is_sign and not weights.ternary) else (
            2 if weights.ternary else 1)
        self.n_planes = coding.n_planes
        self.row_sums = kpop.pad_columns(weights.row_sums, np.int64)
        self.alpha = kpop.pad_columns(weights.alpha, np.float64)
        self.uniform = bool(coding.uniform)
        self.step = float(coding.step) if coding.uniform else 0.0
        self.coefs = np.asarray(coding.coefs, np.float64)
        self.base = float(coding.base)
        self.mid = np.ascontiguousarray(coding.midpoints, np.float32)
        self.bias = (np.zeros(0, np.float32) if bias is None
                     else kpop.pad_columns(np.asarray(bias).reshape(-1), np.float32))
        self._no_valid = np.zeros((0, 0), np.int64)
        self._valid = (None, None)     # (V as given, V with its rows padded to N32)

    def _padded_valid(self, valid):
        if valid is None:
            return self._no_valid
        if self._valid[0] is not valid:
            pad = np.zeros((valid.shape[0], self.row_sums.shape[0]), np.int64)
            pad[:, :valid.shape[1]] = valid
            self._valid = (valid, pad)
        return self._valid[1]

    def _product(self, planes, valid, out):
        kpop._linear(planes, self.pos, self.neg, self.n, self.mode, self.k, self.row_sums,
                     self.uniform, self.step, self.coefs, self.base,
                     self._padded_valid(valid), self.alpha, self.bias, out)
        return out

    def inner_product(self, x):
        """y (M, N) float32 (+ bias) for x (M, k) of quantized levels."""
        x = np.ascontiguousarray(x)
        planes = np.empty((self.n_planes, x.shape[0], self.nw), np.uint64)
        kpack.pack_rows(x, self.mid, self.uniform, planes)
        out = np.empty((x.shape[0], self.n, 1), np.float32)
        return self._product(planes, None, out)[:, :, 0]

    def convolution(self, x, kernel, stride, pad, dilation, out_size, valid):
        """y (B, N, OH * OW) float32 (+ bias) for x (B, C, H, W) of quantized
        levels; ``valid`` (OH * OW, N) int64 or None, as ``packed_matmul``'s V."""
        x = np.ascontiguousarray(x)
        nb, ch, h, w = x.shape
        pix = np.empty((nb, h * w, self.n_planes, bitops.n_words(ch)), np.uint64)
        kpack.pack_pixels(x.reshape(nb, ch, h * w), self.mid, self.uniform, pix)
        oh, ow = out_size
        planes = np.empty((self.n_planes, nb * oh * ow, self.nw), np.uint64)
        geom = (kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1], dilation[0],
                dilation[1], oh, ow)
        unit = next((u for u in (64, 32, 16, 8) if ch % u == 0), 0)
        if unit and np.little_endian:    # whole units per tap, no shifts
            ut = np.dtype("uint%d" % unit)
            kpack.im2col_units(pix.view(ut), w, ch // unit, *geom, planes.view(ut))
        else:
            kpack.im2col_words(pix, w, ch, *geom, planes)
        out = np.empty((nb, self.n, oh * ow), np.float32)
        return self._product(planes, valid, out)
