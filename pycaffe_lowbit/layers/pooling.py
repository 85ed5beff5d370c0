"""Pooling over 2-D windows of (N, C, H, W), as BVLC Caffe computes it.

Window (ph, pw) covers rows hs = ph * sh - pad_h .. hs + kh (and likewise
columns), clipped to the image. Output size (Caffe's rule):

    oh = ceil((H + 2 pad_h - kh) / sh) + 1      (floor with round_mode FLOOR)
    with padding, if (oh - 1) * sh >= H + pad_h: oh -= 1   (the last window
    must start inside the image or its top/left padding)

MAX   y = max over the clipped window (first maximum in row-major order wins);
      optional top 1 = its index h * W + w as a float (-1 for an empty window).
      The gradient goes to that element.
AVE   y = sum over the clipped window / ((min(hs + kh, H + pad_h) - hs) *
      (min(ws + kw, W + pad_w) - ws)): padding inside H + pad counts in the
      divisor, the overhang of a ceil-mode window does not.
STOCHASTIC (no padding; Caffe's GPU kernels, which its CPU code lacks)
      TRAIN: draw u ~ U[0, 1) per output and take the first window element
      whose running sum reaches u * sum (elements chosen with probability
      proportional to their value, inputs assumed >= 0); the gradient goes to it.
      TEST:  y = sum x^2 / (FLT_MIN + sum x). Caffe's TEST backward reuses stale
      sample indices; here it is the gradient of this formula.

The computation loops over the kernel offsets only: the input is split into
stride-phase planes so that each offset is one contiguous slice over a chunk of
the batch (``FlatWindows``), and the MAX argmax is tracked with arithmetic, not
masked writes. A window covering everything (global pooling) is one reduction.
On the kernel path (GPU, or emulated) pooling.cu computes one output per item
forward and gathers one input per item backward (``kernels.pooling``); the
MAX mask is then Caffe's index, kept in the mask top when there are two tops.
STOCHASTIC draws one u per output from the library's generator on both paths.
MAX and AVE on float32 NumPy arrays go to oneDNN where it computes Caffe's exact
windows and divisors (``_pool_onednn``; engine CAFFE keeps this path).
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..cpu import jit, pool as cpu_pool
from ..kernels import pooling as pool_kernels
from ..proto import caffe_pb2
from . import _pool_onednn
from ._im2col import FlatWindows
from .base import Layer
from .registry import register

_P = caffe_pb2.PoolingParameter
FLT_MIN = float(np.finfo(np.float32).tiny)
_CHUNK_BYTES = 2 << 20  # input bytes per chunk on CPU (cache-sized)


@register("Pooling")
class Pooling(Layer):
    exact_num_bottom = 1
    min_num_top = 1
    max_num_top = 2  # the mask top is MAX only (set per instance)

    def __init__(self, param, phase=None, dtype=None):
        super().__init__(param, phase=phase, dtype=dtype)
        if param.pooling_param.pool != _P.MAX:
            self.max_num_top = 1

    def layer_setup(self, bottom, top):
        pp = self.param.pooling_param
        has = pp.HasField

        def need(ok, message):
            if not ok:
                raise self.error(message)
        if pp.global_pooling:
            need(not (has("kernel_size") or has("kernel_h") or has("kernel_w")),
                 "With Global_pooling: true Filter size cannot specified")
        else:
            need((not has("kernel_size")) != (not (has("kernel_h") and has("kernel_w"))),
                 "Filter size is kernel_size OR kernel_h and kernel_w; not both")
            need(has("kernel_size") or (has("kernel_h") and has("kernel_w")),
                 "For non-square filters both kernel_h and kernel_w are required.")
        need((not has("pad") and has("pad_h") and has("pad_w"))
             or (not has("pad_h") and not has("pad_w")),
             "pad is pad OR pad_h and pad_w are required.")
        need((not has("stride") and has("stride_h") and has("stride_w"))
             or (not has("stride_h") and not has("stride_w")),
             "Stride is stride OR stride_h and stride_w are required.")
        self.method = pp.pool
        self.global_pooling = pp.global_pooling
        self.round_mode = pp.round_mode
        if self.global_pooling:
            self.kernel = (bottom[0].height, bottom[0].width)
        elif has("kernel_size"):
            self.kernel = (pp.kernel_size, pp.kernel_size)
        else:
            self.kernel = (pp.kernel_h, pp.kernel_w)
        need(min(self.kernel) > 0, "Filter dimensions cannot be zero (kernel %s)."
             % (self.kernel,))
        self.pad = (pp.pad_h, pp.pad_w) if has("pad_h") else (pp.pad, pp.pad)
        self.stride = (pp.stride_h, pp.stride_w) if has("stride_h") else (pp.stride, pp.stride)
        need(min(self.stride) > 0, "stride must be > 0 (got %s)" % (self.stride,))
        if self.global_pooling:
            need(self.pad == (0, 0) and self.stride == (1, 1),
                 "With Global_pooling: true; only pad = 0 and stride = 1")
        if self.pad != (0, 0):
            need(self.method in (_P.AVE, _P.MAX),
                 "Padding implemented only for average and max pooling (pad %s with "
                 "pool STOCHASTIC)." % (self.pad,))
            need(self.pad[0] < self.kernel[0] and self.pad[1] < self.kernel[1],
                 "pad %s must be smaller than the kernel %s" % (self.pad, self.kernel))

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.error("Input must have 4 axes, corresponding to (num, channels, "
                             "height, width); got shape %s" % (bottom[0].shape,))
        n, c, h, w = bottom[0].shape
        if self.global_pooling:
            self.kernel = (h, w)
        self.in_size = (h, w)
        out = []
        for size, k, s, p in zip(self.in_size, self.kernel, self.stride, self.pad):
            num = size + 2 * p - k
            o = (num // s if self.round_mode == _P.FLOOR else -(-num // s)) + 1
            if p and (o - 1) * s >= size + p:
                o -= 1
            if o < 0:
                raise self.error("kernel %s larger than the padded input %s"
                                 % (self.kernel, self.in_size))
            out.append(o)
        self.out_size = tuple(out)
        geometry = (self.in_size, self.kernel, self.stride, self.pad, self.out_size)
        if getattr(self, "_geometry", None) != geometry:
            self._geometry = geometry
            self._windows = FlatWindows(*geometry)
        k = self.kernel[0] * self.kernel[1]
        self._code_dtype = np.dtype(np.int8 if k < 127 else np.int16 if k < 32767
                                    else np.int32)
        # One window at the origin (global pooling): a plain reduction.
        self._single = (self.out_size == (1, 1) and self.pad == (0, 0)
                        and self.method != _P.STOCHASTIC)
        for t in top:
            t.reshape((n, c) + self.out_size)

    def _chunks(self, planes, xp):
        if not all(self.out_size):
            return []
        budget = _CHUNK_BYTES if xp is np else 1 << 62
        h, w = self.in_size
        step = max(1, budget // max(1, h * w * self.dtype.itemsize))
        return [(i, min(planes, i + step)) for i in range(0, planes, step)]

    # -- forward ---------------------------------------------------------------
    def forward(self, bottom, top):
        if _pool_onednn.forward(self, bottom, top):   # oneDNN's engine, where exact
            return
        x = bottom[0].data
        if kernels.active(x):
            self._forward_kernels(x, top)
            return
        xp = backend.get_array_module(x)
        n, c = x.shape[:2]
        if self._single:
            win = x[:, :, :self.kernel[0], :self.kernel[1]]
            if self.method == _P.MAX:
                y, self._arg = self._single_max(win, xp)
            else:
                y = win.sum(axis=(2, 3), keepdims=True, dtype=self.dtype) / \
                    self.dtype.type(self._divisor()[0, 0])
        else:
            x3 = x.reshape((n * c,) + self.in_size)
            y = xp.empty((n * c,) + self.out_size, self.dtype)
            if self.method == _P.MAX:
                self._arg = xp.empty(y.shape, self._code_dtype)
            elif self.method == _P.STOCHASTIC:
                if self.phase == caffe_pb2.TEST:
                    self._sto_sum, self._sto_sq = xp.empty_like(y), xp.empty_like(y)
                else:
                    self._arg = xp.empty(y.shape, self._code_dtype)
                    self._u = self._uniform(y.shape, xp)
            for p0, p1 in self._chunks(n * c, xp):
                self._forward_chunk(x3[p0:p1], y, p0, p1, xp)
            if self.method == _P.AVE:
                y /= xp.asarray(self._divisor(), self.dtype)
            elif self.method == _P.MAX:
                self._arg -= 1
            y = y.reshape(top[0].shape)
        top[0].data = y
        if len(top) > 1:
            top[1].data = self._mask(xp, top[1].shape)

    def _forward_chunk(self, xc, y, p0, p1, xp):
        fw, n = self._windows, p1 - p0
        length = fw.length(n)
        size = n * fw.grid[0] * fw.grid[1]
        if self.method == _P.MAX:
            planes = fw.to_planes(xc, -np.inf, xp)
            best = xp.full(size, np.finfo(self.dtype).min, self.dtype)
            code = xp.zeros(size, self._code_dtype)  # 1 + offset of the maximum, 0: none
            better = xp.empty(length, bool)
            tmp = xp.empty(length, self._code_dtype)
            b, cd = best[:length], code[:length]
            for k, ph, pw, shift in fw.offsets:
                cand = planes[ph, pw, shift:shift + length]
                xp.greater(cand, b, out=better)  # Caffe's strict '>': first max wins
                xp.fmax(b, cand, out=b)
                xp.multiply(better, self._code_dtype.type(k + 1), out=tmp)
                xp.maximum(cd, tmp, out=cd)  # improvements come in offset order
            y[p0:p1] = fw.from_grid(best, n)
            self._arg[p0:p1] = fw.from_grid(code, n)
            return
        planes = fw.to_planes(xc, 0, xp)
        if self.method == _P.AVE:
            acc = xp.zeros(size, self.dtype)
            a = acc[:length]
            for k, ph, pw, shift in fw.offsets:
                a += planes[ph, pw, shift:shift + length]
            y[p0:p1] = fw.from_grid(acc, n)
        elif self.phase == caffe_pb2.TEST:  # STOCHASTIC: sum x^2 / (FLT_MIN + sum x)
            total = xp.full(size, FLT_MIN, self.dtype)
            sq = xp.zeros(size, self.dtype)
            t, q = total[:length], sq[:length]
            for k, ph, pw, shift in fw.offsets:
                cand = planes[ph, pw, shift:shift + length]
                t += cand
                q += cand * cand
            self._sto_sum[p0:p1] = fw.from_grid(total, n)
            self._sto_sq[p0:p1] = fw.from_grid(sq, n)
            y[p0:p1] = self._sto_sq[p0:p1] / self._sto_sum[p0:p1]
        else:  # STOCHASTIC TRAIN: the first element whose running sum reaches u * sum
            stack = xp.empty((len(fw.offsets), length), self.dtype)
            for k, ph, pw, shift in fw.offsets:
                stack[k] = planes[ph, pw, shift:shift + length]
            running = xp.cumsum(stack, axis=0)
            u = fw.to_grid(self._u[p0:p1], 0, xp)[:length]
            chosen = xp.argmax(running >= u.astype(self.dtype) * running[-1], axis=0)
            grid = xp.zeros(size, self.dtype)
            grid[:length] = xp.take_along_axis(stack, chosen[None], axis=0)[0]
            y[p0:p1] = fw.from_grid(grid, n)
            codes = xp.zeros(size, self._code_dtype)
            codes[:length] = chosen
            self._arg[p0:p1] = fw.from_grid(codes, n)

    def _uniform(self, shape, xp):
        """u ~ U[0, 1) per output of STOCHASTIC TRAIN, in the layer's dtype, from
        the library's seeded generator (the host one for NumPy arrays, CuPy's on
        the device): the NumPy and emulated kernel paths draw the same numbers."""
        if xp is np:
            return backend.rng().random(shape).astype(self.dtype)
        return xp.random.random_sample(shape, self.dtype)

    def _kernel_geometry(self):
        return pool_kernels.Geometry(self.in_size, self.kernel, self.stride, self.pad,
                                     self.out_size)

    def _forward_kernels(self, x, top):
        """pooling.cu's forward; keeps the mask (or STOCHASTIC TEST's sums)."""
        xp, geometry = backend.get_array_module(x), self._kernel_geometry()
        if self.method == _P.MAX:
            top_mask = xp.empty(top[1].shape, self.dtype) if len(top) > 1 else None
            y, self._kmask = pool_kernels.max_forward(x, geometry, top_mask)
            if top_mask is not None:
                top[1].data = top_mask
        elif self.method == _P.AVE:
            y = pool_kernels.ave_forward(x, geometry)
        elif self.phase == caffe_pb2.TEST:
            y, self._sto_sum, self._sto_sq = pool_kernels.stochastic_test_forward(x, geometry)
        else:
            u = self._uniform(top[0].shape, xp)
            y, self._kmask = pool_kernels.stochastic_train_forward(x, u, geometry)
        top[0].data = y

    def _backward_kernels(self, dy, x):
        geometry = self._kernel_geometry()
        if self.method == _P.AVE:
            return pool_kernels.ave_backward(dy, geometry)
        if self.method == _P.STOCHASTIC and self.phase == caffe_pb2.TEST:
            return pool_kernels.stochastic_test_backward(dy, x, self._sto_sum, self._sto_sq,
                                                         geometry)
        return pool_kernels.mask_backward(dy, self._kmask, geometry)

    def _single_max(self, win, xp):
        shape = win.shape[:2] + (1, 1)
        lowest = np.finfo(self.dtype).min
        flat = win.reshape(shape[:2] + (-1,))
        pos = xp.argmax(flat, axis=2)[..., None]
        y = xp.take_along_axis(flat, pos, axis=2)
        ok = y > lowest  # Caffe keeps -FLT_MAX and index -1 when nothing beats it
        arg = (pos // win.shape[3]) * self.kernel[1] + pos % win.shape[3]
        return (xp.where(ok, y, lowest).reshape(shape).astype(self.dtype, copy=False),
                xp.where(ok, arg, -1).reshape(shape).astype(self._code_dtype))

    def _mask(self, xp, shape):
        """The MAX index top: h * W + w of each output's maximum, -1 if none."""
        kw = self.kernel[1]
        hs = xp.arange(self.out_size[0]).reshape(-1, 1) * self.stride[0] - self.pad[0]
        ws = xp.arange(self.out_size[1]).reshape(1, -1) * self.stride[1] - self.pad[1]
        a = self._arg.reshape(shape).astype(np.int64)
        idx = (hs + a // kw) * self.in_size[1] + ws + a % kw
        return xp.where(a >= 0, idx, -1).astype(self.dtype)

    def _compiled(self, x3):
        """MAX on NumPy float arrays with Numba on: the backward loop of ``cpu.pool``
        (its forward measured slower than the offset sweeps here, so it stays)."""
        return self.method == _P.MAX and all(self.out_size) and jit.runs(x3)

    def _divisor(self):
        """Caffe's AVE pool_size per output (padding inside H + pad counts)."""
        sizes = []
        for size, k, s, p, o in zip(self.in_size, self.kernel, self.stride, self.pad,
                                    self.out_size):
            start = np.arange(o) * s - p
            sizes.append(np.minimum(start + k, size + p) - start)
        return np.outer(sizes[0], sizes[1])

    # -- backward --------------------------------------------------------------
    def backward(self, top, propagate_down, bottom):
        if _pool_onednn.backward(self, top, propagate_down, bottom) or not propagate_down[0]:
            return
        dy = top[0].diff
        xp = backend.get_array_module(dy)
        x = bottom[0].data
        if kernels.active(dy):
            bottom[0].diff = self._backward_kernels(dy, x)
            return
        n, c = x.shape[:2]
        if self.method == _P.AVE:
            dy = dy / xp.asarray(self._divisor(), self.dtype)
        if self._single:
            dx = xp.zeros(x.shape, self.dtype)
            win = dx[:, :, :self.kernel[0], :self.kernel[1]]
            if self.method == _P.AVE:
                win[...] = dy
            else:
                kw, ww = self.kernel[1], win.shape[3]
                a = self._arg.reshape(n, c, 1).astype(np.int64)
                pos = xp.where(a >= 0, (a // kw) * ww + a % kw, -1)
                hit = xp.arange(win.shape[2] * ww) == pos
                win[...] = (hit * dy.reshape(n, c, 1)).reshape(win.shape)
            bottom[0].diff = dx
            return
        dy3 = dy.reshape((n * c,) + self.out_size)
        x3 = x.reshape((n * c,) + self.in_size)
        if self._compiled(x3) and self._arg.flags.c_contiguous:
            dx = xp.empty(x3.shape, self.dtype)
            cpu_pool.max_pool_backward(xp.ascontiguousarray(dy3), self._arg, *self.kernel,
                                       *self.stride, *self.pad, dx)
            bottom[0].diff = dx.reshape(x.shape)
            return
        dx = xp.zeros(x3.shape, self.dtype)
        for p0, p1 in self._chunks(n * c, xp):
            self._backward_chunk(dy3[p0:p1], x3[p0:p1], dx[p0:p1], p0, p1, xp)
        bottom[0].diff = dx.reshape(x.shape)

    def _backward_chunk(self, dy, xc, dx, p0, p1, xp):
        fw, n = self._windows, p1 - p0
        length = fw.length(n)
        dplanes = xp.zeros(fw.n_phases + (n * fw.grid[0] * fw.grid[1],), self.dtype)
        g = fw.to_grid(dy, 0, xp)[:length]
        if self.method == _P.AVE:
            for k, ph, pw, shift in fw.offsets:
                dplanes[ph, pw, shift:shift + length] += g
        elif self.method == _P.STOCHASTIC and self.phase == caffe_pb2.TEST:
            total, sq = self._sto_sum[p0:p1], self._sto_sq[p0:p1]
            a = fw.to_grid(2 * dy / total, 0, xp)[:length]
            b = fw.to_grid(dy * sq / (total * total), 0, xp)[:length]
            planes = fw.to_planes(xc, 0, xp)
            for k, ph, pw, shift in fw.offsets:
                dplanes[ph, pw, shift:shift + length] += \
                    a * planes[ph, pw, shift:shift + length] - b
        else:  # MAX, STOCHASTIC TRAIN: to the chosen element
            code = fw.to_grid(self._arg[p0:p1], -1, xp)[:length]
            hit = xp.empty(length, bool)
            tmp = xp.empty(length, self.dtype)
            for k, ph, pw, shift in fw.offsets:
                xp.equal(code, k, out=hit)
                xp.multiply(g, hit, out=tmp)
                dplanes[ph, pw, shift:shift + length] += tmp
        fw.from_planes(dplanes, dx)
