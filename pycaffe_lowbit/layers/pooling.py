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

The computation loops over the kernel offsets only, each a strided slice of
the whole batch; a window covering everything (global pooling) is one reduction.
"""
import numpy as np

from .. import backend
from ..proto import caffe_pb2
from ._im2col import axis_range
from .base import Layer
from .registry import register

_P = caffe_pb2.PoolingParameter
FLT_MIN = float(np.finfo(np.float32).tiny)


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
                 "Padding implemented only for average and max pooling.")
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
        # Per kernel offset: its index, and the output / input slices inside the image.
        self._offsets = []
        for i in range(self.kernel[0]):
            rh = axis_range(i - self.pad[0], self.stride[0], h, out[0])
            for j in range(self.kernel[1]):
                rw = axis_range(j - self.pad[1], self.stride[1], w, out[1])
                if rh is not None and rw is not None:
                    self._offsets.append((i * self.kernel[1] + j,
                                          (Ellipsis, slice(rh[0], rh[1]), slice(rw[0], rw[1])),
                                          (Ellipsis, rh[2], rw[2])))
        # A single window at the origin: one reduction over x[..., :h1, :w1].
        self._single = (self.out_size == (1, 1) and self.pad == (0, 0))
        for t in top:
            t.reshape((n, c) + self.out_size)

    # -- forward ---------------------------------------------------------------
    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if self.method == _P.MAX:
            y, self._arg = self._max(x, xp)
        elif self.method == _P.AVE:
            y = self._window_sum(x, xp) / xp.asarray(self._divisor(), self.dtype)
        elif self.method == _P.STOCHASTIC:
            y = self._stochastic_forward(x, xp)
        else:
            raise self.error("unknown pooling method %d" % self.method)
        top[0].data = y
        if len(top) > 1:
            top[1].data = self._mask(xp)

    def _max(self, x, xp):
        shape = x.shape[:2] + self.out_size
        lowest = np.finfo(self.dtype).min
        if self._single:
            win = x[:, :, :self.kernel[0], :self.kernel[1]]
            flat = win.reshape(shape[:2] + (-1,))
            pos = xp.argmax(flat, axis=2)
            y = xp.take_along_axis(flat, pos[..., None], axis=2)
            ok = y > lowest  # Caffe keeps -FLT_MAX and index -1 when nothing beats it
            ww = win.shape[3]
            arg = (pos[..., None] // ww) * self.kernel[1] + pos[..., None] % ww
            return (xp.where(ok, y, lowest).reshape(shape).astype(self.dtype, copy=False),
                    xp.where(ok, arg, -1).reshape(shape).astype(np.int32))
        best = xp.full(shape, lowest, self.dtype)
        arg = xp.full(shape, -1, np.int32)
        index = xp.arange(self.kernel[0] * self.kernel[1], dtype=np.int32)
        for k, o, s in self._offsets:
            cand = x[s]
            b, a = best[o], arg[o]
            better = cand > b
            xp.copyto(b, cand, where=better)
            xp.copyto(a, index[k], where=better)
        return best, arg

    def _mask(self, xp):
        """The MAX index top: h * W + w of each output's maximum, -1 if none."""
        kw = self.kernel[1]
        hs = xp.arange(self.out_size[0]).reshape(-1, 1) * self.stride[0] - self.pad[0]
        ws = xp.arange(self.out_size[1]).reshape(1, -1) * self.stride[1] - self.pad[1]
        a = self._arg
        idx = (hs + a // kw) * self.in_size[1] + ws + a % kw
        return xp.where(a >= 0, idx, -1).astype(self.dtype)

    def _window_sum(self, x, xp, fill=0.0, fn=None):
        if self._single and fn is None and fill == 0.0:
            win = x[:, :, :self.kernel[0], :self.kernel[1]]
            return win.sum(axis=(2, 3), keepdims=True, dtype=self.dtype)
        acc = xp.full(x.shape[:2] + self.out_size, fill, self.dtype)
        for k, o, s in self._offsets:
            acc[o] += x[s] if fn is None else fn(x[s])
        return acc

    def _divisor(self):
        """Caffe's AVE pool_size per output (padding inside H + pad counts)."""
        sizes = []
        for size, k, s, p, o in zip(self.in_size, self.kernel, self.stride, self.pad,
                                    self.out_size):
            start = np.arange(o) * s - p
            sizes.append(np.minimum(start + k, size + p) - start)
        return np.outer(sizes[0], sizes[1])

    def _stochastic_forward(self, x, xp):
        if self.phase == caffe_pb2.TEST:
            self._sto_sum = self._window_sum(x, xp, fill=FLT_MIN)
            self._sto_sq = self._window_sum(x, xp, fn=lambda v: v * v)
            return self._sto_sq / self._sto_sum
        shape = x.shape[:2] + self.out_size
        stack = xp.zeros((self.kernel[0] * self.kernel[1],) + shape, self.dtype)
        for k, o, s in self._offsets:
            stack[k][o] = x[s]
        running = xp.cumsum(stack, axis=0)
        if xp is np:
            u = backend.rng().random(shape)
        else:
            u = xp.random.random_sample(shape)
        threshold = u.astype(self.dtype) * running[-1]
        self._arg = xp.argmax(running >= threshold, axis=0).astype(np.int32)
        return xp.take_along_axis(stack, self._arg[None], axis=0)[0]

    # -- backward --------------------------------------------------------------
    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        xp = backend.get_array_module(dy)
        x = bottom[0].data
        dx = xp.zeros(x.shape, self.dtype)
        if self.method == _P.AVE:
            g = dy / xp.asarray(self._divisor(), self.dtype)
            if self._single:
                dx[:, :, :self.kernel[0], :self.kernel[1]] = g
            else:
                for k, o, s in self._offsets:
                    dx[s] += g[o]
        elif self.method == _P.STOCHASTIC and self.phase == caffe_pb2.TEST:
            a = 2 * dy / self._sto_sum
            b = dy * self._sto_sq / (self._sto_sum * self._sto_sum)
            for k, o, s in self._offsets:
                dx[s] += a[o] * x[s] - b[o]
        elif self._single:  # MAX, STOCHASTIC TRAIN: to the chosen element
            win = dx[:, :, :self.kernel[0], :self.kernel[1]]
            kw, ww = self.kernel[1], win.shape[3]
            pos = xp.where(self._arg >= 0, (self._arg // kw) * ww + self._arg % kw, -1)
            hit = xp.arange(win.shape[2] * ww) == pos.reshape(pos.shape[:2] + (1,))
            win[...] = (hit * dy.reshape(dy.shape[:2] + (1,))).reshape(win.shape)
        else:
            zero = xp.zeros((), self.dtype)
            for k, o, s in self._offsets:
                dx[s] += xp.where(self._arg[o] == k, dy[o], zero)
        bottom[0].diff = dx
