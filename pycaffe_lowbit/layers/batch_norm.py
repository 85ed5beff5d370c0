"""BatchNorm: normalise each channel (axis 1) over every other axis, as Caffe does.

Statistics per channel c over the m = count / C values of x[:, c, ...]:
  batch      mu = mean(x),  var = mean((x - mu)^2)
  global     mu = blobs[0] * f,  var = blobs[1] * f,  f = 0 if blobs[2] == 0
             else 1 / blobs[2]
  y = (x - mu) / sqrt(var + eps)

``use_global_stats`` defaults to (phase == TEST). With batch statistics the
forward also updates the blobs (a = moving_average_fraction):
  blobs[2] = a * blobs[2] + 1
  blobs[0] = a * blobs[0] + mu
  blobs[1] = a * blobs[1] + m / (m - 1) * var      (factor 1 when m == 1)

Backward, with means over the non-channel axes:
  batch   dx = (dy - mean(dy) - mean(dy * y) * y) / sqrt(var + eps)
  global  dx = dy / sqrt(var + eps)
On NumPy with Numba on, the batch-statistics forward and backward run as the
compiled passes of ``cpu.norm`` (sums in float64), the code below their reference.
The three blobs are statistics, not parameters: Caffe forces their lr_mult to 0
(adding ``param { lr_mult: 0 }`` entries to this layer's parameter) and their
diffs stay 0. Bottom: N x C x ... (at least 2 axes); top: same. In-place allowed.
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..cpu import jit, norm as cpu_norm
from ..kernels import normalization as norm_kernels
from ..proto import caffe_pb2
from .base import Layer
from .registry import register


@register("BatchNorm")
class BatchNorm(Layer):
    exact_num_bottom = 1
    exact_num_top = 1
    _pair_pending = None   # a fused pass with Scale whose state is not ours yet

    def layer_setup(self, bottom, top):
        bp = self.param.batch_norm_param
        self.moving_average_fraction = bp.moving_average_fraction
        self.use_global_stats = (bp.use_global_stats if bp.HasField("use_global_stats")
                                 else self.phase == caffe_pb2.TEST)
        self.eps = bp.eps
        x = bottom[0]
        self.channels = 1 if x.num_axes == 1 else x.shape[1]
        if not self.blobs:
            self.blobs = [self.new_blob((self.channels,)), self.new_blob((self.channels,)),
                          self.new_blob((1,))]
        if len(self.blobs) != 3:
            raise self.error("expects 3 blobs (mean, variance, scale factor), got %d"
                             % len(self.blobs))
        for i, n in enumerate((self.channels, self.channels, 1)):
            if self.blobs[i].count != n:
                raise self.error("blob %d has shape %s; expected %d values"
                                 % (i, self.blobs[i].shape, n))
        self._freeze_statistics()

    def _freeze_statistics(self):
        """Caffe's mask on the statistics: each ParamSpec gets lr_mult 0 (added to
        this layer's LayerParameter where missing, as Caffe edits its own copy, so
        the Net and a saved model see them); a nonzero lr_mult is an error."""
        specs = self.param.param
        for i in range(len(self.blobs)):
            if i < len(specs) and specs[i].lr_mult != 0:
                raise self.error("cannot configure batch normalization statistics as "
                                 "layer parameters (param %d has lr_mult %g; expected 0)"
                                 % (i, specs[i].lr_mult))
        while len(specs) < len(self.blobs):
            specs.add().lr_mult = 0.0
        self.param_propagate_down = [False] * len(self.blobs)

    def reshape(self, bottom, top):
        x = bottom[0]
        if x.num_axes < 2 or x.shape[1] != self.channels:
            raise self.error("bottom shape %s must be N x %d x ... (the channels seen "
                             "at setup)" % (x.shape, self.channels))
        if top[0] is not x:
            top[0].reshape(x.shape)
        n = x.shape[0]
        self._dims = (n, self.channels, x.count // max(n * self.channels, 1))

    def forward(self, bottom, top):
        if self._pair_pending is not None:     # after a fused pass (bn_scale_pair.py)
            self._pair_pending.materialize()
        x = bottom[0].data.reshape(self._dims)
        xp = bottom[0].xp
        dt = self.dtype.type
        m = self._dims[0] * self._dims[2]
        if m == 0 and not self.use_global_stats:
            raise self.error("batch statistics (use_global_stats false, as in TRAIN) need at "
                             "least one value per channel; bottom '%s' has shape %s"
                             % (self.param.bottom[0] if self.param.bottom else "0",
                                bottom[0].shape))
        if kernels.active(x):
            y, self._std = norm_kernels.batch_norm_forward(
                x, self._dims, [b.data for b in self.blobs], self.use_global_stats, self.eps,
                self.moving_average_fraction,
                None if self.use_global_stats else self._x_norm_buffer(xp))
            top[0].data = y.reshape(bottom[0].shape)
            return
        y = xp.empty(self._dims, x.dtype)  # top's new array (in place: x is not overwritten)
        if not self.use_global_stats and jit.runs(x):
            self._forward_compiled(x, y, m)
        elif self.use_global_stats:
            mean = self._global_statistics()
            xp.subtract(x, mean, out=y)
            y /= self._std
        else:
            # Caffe: per (n, c) sums scaled by 1 / m, then summed over n.
            mean = (x.sum(axis=2, keepdims=True) * dt(1.0 / m)).sum(axis=0, keepdims=True)
            x_norm = self._x_norm_buffer(xp)
            centred = xp.subtract(x, mean, out=x_norm)
            sq = xp.multiply(centred, centred, out=y)  # y as scratch
            var = (sq.sum(axis=2, keepdims=True) * dt(1.0 / m)).sum(axis=0, keepdims=True)
            self._update_statistics(mean, var, m)
            self._std = xp.sqrt(var + dt(self.eps))
            x_norm /= self._std  # kept for backward; top.data gets its own copy
            xp.copyto(y, x_norm)
        top[0].data = y.reshape(bottom[0].shape)

    def _forward_compiled(self, x, y, m):
        """Batch statistics in one pass (float64 sums), then x_norm and y in one."""
        x = np.ascontiguousarray(x)
        mean = self._batch_statistics_compiled(x, m)
        cpu_norm.bn_normalize(x, mean.reshape(-1), self._std.reshape(-1),
                              self._x_norm_buffer(np), y)

    def _batch_statistics_compiled(self, x, m):
        """The batch mean (1, C, 1) of a contiguous (N, C, L) NumPy x, in one
        compiled pass; updates the running statistics and sets self._std."""
        dt = self.dtype
        mean, var = np.empty(self.channels), np.empty(self.channels)
        cpu_norm.bn_stats(x, mean, var)
        mean, var = mean.astype(dt).reshape(1, -1, 1), var.astype(dt).reshape(1, -1, 1)
        self._update_statistics(mean, var, m)
        self._std = np.sqrt(var + dt.type(self.eps))
        return mean

    def _global_statistics(self):
        """The stored mean (1, C, 1) scaled by the stored factor; sets self._std."""
        dt = self.dtype.type
        xp = self.blobs[0].xp
        s = float(self.blobs[2].data.reshape(-1)[0])
        factor = dt(0) if s == 0 else dt(1) / dt(s)
        mean = self.blobs[0].data.reshape(1, -1, 1) * factor
        var = self.blobs[1].data.reshape(1, -1, 1) * factor
        self._std = xp.sqrt(var + dt(self.eps))
        return mean

    def statistics_for_pair(self, x):
        """For the fused BatchNorm+Scale pass (bn_scale_pair.py): (mean, std) as
        flat (C,) arrays for a contiguous (N, C, L) NumPy x, exactly as forward
        computes them (and with the same updates of the running statistics)."""
        if self.use_global_stats:
            mean = self._global_statistics()
        else:
            mean = self._batch_statistics_compiled(x, self._dims[0] * self._dims[2])
        return mean.reshape(-1), self._std.reshape(-1)

    def _update_statistics(self, mean, var, m):
        dt = self.dtype.type
        a = dt(self.moving_average_fraction)
        correction = dt(m) / dt(m - 1) if m > 1 else dt(1)
        stats = self.blobs
        stats[2].data[...] = stats[2].data * a + dt(1)
        stats[0].data[...] = mean.reshape(stats[0].shape) + a * stats[0].data
        stats[1].data[...] = (correction * var.reshape(stats[1].shape)
                              + a * stats[1].data)

    def _x_norm_buffer(self, xp):
        """The private (N, C, L) array for x_norm, kept between calls (never handed
        to a blob, so no other layer writes to it)."""
        buf = getattr(self, "_y", None)
        if buf is None or buf.shape != self._dims or backend.get_array_module(buf) is not xp:
            buf = self._y = xp.empty(self._dims, self.dtype)
        return buf

    def backward(self, top, propagate_down, bottom):
        if self._pair_pending is not None:
            self._pair_pending.materialize()
        if not propagate_down[0]:
            return
        dy = top[0].diff.reshape(self._dims)
        xp = top[0].xp
        if kernels.active(dy):
            dx = norm_kernels.batch_norm_backward(dy, self._dims, self._std,
                                                  None if self.use_global_stats else self._y)
            bottom[0].diff = dx.reshape(bottom[0].shape)
            return
        dx = xp.empty(self._dims, dy.dtype)  # bottom's new diff (dy may be shared)
        if self.use_global_stats:
            xp.divide(dy, self._std, out=dx)
        elif jit.runs(dy):
            cpu_norm.bn_backward(np.ascontiguousarray(dy), self._y, self._std.reshape(-1), dx)
        else:
            y = self._y
            dt = self.dtype.type
            m = self._dims[0] * self._dims[2]
            dyy = xp.multiply(dy, y, out=dx)  # dx as scratch
            sum_dyy = dyy.sum(axis=2, keepdims=True).sum(axis=0, keepdims=True)
            sum_dy = dy.sum(axis=2, keepdims=True).sum(axis=0, keepdims=True)
            # dx = (dy + (-1/m) * (sum_dyy * y + sum_dy)) / std, in place
            xp.multiply(sum_dyy, y, out=dx)
            dx += sum_dy
            xp.multiply(dt(-1.0 / m), dx, out=dx)
            xp.add(dy, dx, out=dx)
            dx /= self._std
        bottom[0].diff = dx.reshape(bottom[0].shape)
