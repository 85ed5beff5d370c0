"""Scale and Bias: multiply or add a blob broadcast along axes of bottom[0].

The second operand s (Scale) or b (Bias) is bottom[1] when given, else a learned
blob of shape ``bottom[0].shape[axis : axis + num_axes]`` (num_axes -1: to the
end; 0: a scalar). With x viewed as (outer, dim, inner) and s as (1, dim, 1):

Bias   y = x + b;  dx = dy;  db = sum_{outer, inner} dy
Scale  y = x * s (+ b with ``bias_term``, a Bias applied to the top);
       dx = dy * s;  ds = sum_{outer, inner} dy * x

On NumPy with Numba on, a learned Scale (with its bias) runs forward and
backward as one pass each (``cpu.norm``), the code below their reference.
Learned blobs accumulate their diffs; a bottom[1] diff is overwritten. Fillers:
Scale's defaults to constant 1 and its bias_filler to constant 0, Bias's filler to
constant 0. Bottom: any shape; top: same shape. In-place allowed.
"""
import numpy as np

from .. import kernels
from ..core.fillers import fill
from ..cpu import jit, norm as cpu_norm
from ..kernels import normalization as norm_kernels
from ..proto import caffe_pb2
from .base import Layer
from .registry import register
from .shape_ops import canonical_axis


def _learned_shape(layer, bottom, axis, num_axes, what):
    """Shape of the learned operand: bottom dims [axis, axis + num_axes)."""
    axis = canonical_axis(layer, bottom, axis)
    if num_axes < -1:
        raise layer.error("num_axes must be non-negative, or -1 to extend to the end "
                          "of bottom[0] (got %d)" % num_axes)
    if num_axes >= 0 and bottom.num_axes < axis + num_axes:
        raise layer.error("%s blob's shape extends past bottom[0]'s shape %s when "
                          "applied starting with bottom[0] axis = %d with num_axes %d"
                          % (what, bottom.shape, axis, num_axes))
    end = bottom.num_axes if num_axes == -1 else axis + num_axes
    return bottom.shape[axis:end]


def _dims(layer, bottom, operand, axis, what):
    """(outer, dim, inner) of bottom for an operand applied at ``axis``;
    a zero-axis operand is applied at axis 0, as in Caffe."""
    axis = 0 if operand.num_axes == 0 else canonical_axis(layer, bottom, axis)
    if bottom.num_axes < axis + operand.num_axes:
        raise layer.error("%s blob's shape %s extends past bottom[0]'s shape %s when "
                          "applied starting with bottom[0] axis = %d"
                          % (what, operand.shape, bottom.shape, axis))
    for i, d in enumerate(operand.shape):
        if bottom.shape[axis + i] != d:
            raise layer.error("dimension mismatch between bottom[0]->shape(%d) = %d "
                              "and %s->shape(%d) = %d (bottom[0] %s, %s %s)"
                              % (axis + i, bottom.shape[axis + i], what, i, d,
                                 bottom.shape, what, operand.shape))
    return (bottom.count_range(0, axis), operand.count,
            bottom.count_range(axis + operand.num_axes))


def _sum_to(a, dims, shape):
    """Sum a (outer*dim*inner) array over outer and inner, shaped ``shape``."""
    return a.reshape(dims).sum(axis=(0, 2)).reshape(shape)


def _kernel_grad(blob, learned, dims, a, b=None):
    """The kernel path of a param gradient, sum over outer and inner of a (* b):
    added to a learned blob's diff, a new diff for a bottom operand."""
    if learned:
        norm_kernels.channel_sums(a, dims, blob.diff, True, b)
    else:
        blob.diff = norm_kernels.channel_sums(a, dims, blob.xp.empty(blob.shape, a.dtype),
                                              False, b)


@register("Bias")
class Bias(Layer):
    min_num_bottom = 1
    max_num_bottom = 2
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        if len(bottom) == 1 and not self.blobs:
            bp = self.param.bias_param
            shape = _learned_shape(self, bottom[0], bp.axis, bp.num_axes, "bias")
            self.blobs = [self.new_blob(shape)]
            fill(self.blobs[0], bp.filler)

    def _operand(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        b = self._operand(bottom)
        self._dims = _dims(self, bottom[0], b, self.param.bias_param.axis, "bias")
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            top[0].data = norm_kernels.bias_forward(x, self._dims, self._operand(bottom).data)
            return
        b = self._operand(bottom).data.reshape(1, self._dims[1], 1)
        top[0].data = (x.reshape(self._dims) + b).reshape(x.shape)

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        if propagate_down[0] and top[0] is not bottom[0]:
            bottom[0].diff = dy.copy()
        if kernels.active(dy):
            if self.param_propagate_down[0] if len(bottom) == 1 else propagate_down[1]:
                _kernel_grad(self._operand(bottom), len(bottom) == 1, self._dims, dy)
        elif len(bottom) == 1:
            if self.param_propagate_down[0]:
                blob = self.blobs[0]
                blob.diff += _sum_to(dy, self._dims, blob.shape)
        elif propagate_down[1]:
            bottom[1].diff = _sum_to(dy, self._dims, bottom[1].shape)


@register("Scale")
class Scale(Layer):
    min_num_bottom = 1
    max_num_bottom = 2
    exact_num_top = 1
    _pair_pending = None   # a fused pass with BatchNorm whose state is not ours yet

    def layer_setup(self, bottom, top):
        sp = self.param.scale_param
        if len(bottom) == 1 and not self.blobs:
            shape = _learned_shape(self, bottom[0], sp.axis, sp.num_axes, "scale")
            self.blobs = [self.new_blob(shape)]
            filler = caffe_pb2.FillerParameter()
            if sp.HasField("filler"):
                filler.CopyFrom(sp.filler)
            else:  # unit scale: the layer starts as the identity
                filler.type, filler.value = "constant", 1.0
            fill(self.blobs[0], filler)
        self._bias = None
        if sp.bias_term:
            self._setup_bias(bottom, top)

    def _setup_bias(self, bottom, top):
        """A Bias layer on the top, as Caffe's ScaleLayer builds it."""
        sp = self.param.scale_param
        bias_param = caffe_pb2.LayerParameter()
        bias_param.CopyFrom(self.param)
        del bias_param.blobs[:]
        bias_param.type = "Bias"
        bias_param.bias_param.axis = sp.axis
        bias_param.bias_param.num_axes = (bottom[1].num_axes if len(bottom) > 1
                                          else sp.num_axes)
        bias_param.bias_param.filler.CopyFrom(sp.bias_filler)
        self._bias = Bias(bias_param, phase=self.phase, dtype=self.dtype)
        preloaded = len(self.blobs) + len(bottom) >= 3
        if preloaded:  # the bias blob came with the layer's blobs
            self._bias.blobs = [self.blobs[-1]]
        self._bias.setup([bottom[0]], top)
        if not preloaded:
            self.blobs.append(self._bias.blobs[0])

    def _operand(self, bottom):
        return bottom[1] if len(bottom) > 1 else self.blobs[0]

    def reshape(self, bottom, top):
        s = self._operand(bottom)
        self._dims = _dims(self, bottom[0], s, self.param.scale_param.axis, "scale")
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)
        if self._bias is not None:
            self._bias.blobs = [self.blobs[-1]]   # the net may have shared it since setup
            self._bias.reshape([top[0]], top)

    def forward(self, bottom, top):
        if self._pair_pending is not None:     # after a fused pass (bn_scale_pair.py)
            self._pair_pending.materialize()
        x = bottom[0].data
        xp = bottom[0].xp
        # In place, backward needs x after top.data is replaced: keep a copy
        # (the old array may still be reachable and written through elsewhere),
        # as Caffe does, only when the scale's gradient will be computed.
        keep = top[0] is bottom[0] and self._scale_grad(bottom)
        if self._compiled(x, bottom):
            self._x = np.empty_like(x) if keep else None
            self._forward_compiled(x, top, bottom)
            return
        self._x = x.copy() if keep else None
        if kernels.active(x):
            fused = self._bias is not None and self._bias._dims == self._dims
            top[0].data = norm_kernels.scale_forward(
                x, self._dims, self._operand(bottom).data,
                self._bias.blobs[0].data if fused else None)
            if self._bias is not None and not fused:
                self._bias.forward([top[0]], top)
            return
        s = self._operand(bottom).data.reshape(1, self._dims[1], 1)
        y = xp.multiply(x.reshape(self._dims), s)  # top's new array
        if self._bias is not None and self._bias._dims == self._dims:
            y += self._bias.blobs[0].data.reshape(1, self._dims[1], 1)  # fused Bias
            top[0].data = y.reshape(x.shape)
        else:
            top[0].data = y.reshape(x.shape)
            if self._bias is not None:
                self._bias.forward([top[0]], top)

    def _compiled(self, a, bottom):
        """A learned scale (and a bias of the same dims, or none) on NumPy float
        arrays with Numba on: the one-pass loops of ``cpu.norm``."""
        return (len(bottom) == 1 and jit.runs(a) and not kernels.active(a)
                and (self._bias is None or self._bias._dims == self._dims))

    def _forward_compiled(self, x, top, bottom):
        """y = x s + b in one pass, copying x into self._x on the way if kept."""
        dims, dt = self._dims, self.dtype
        s = self.blobs[0].data.reshape(-1)
        b = self._bias.blobs[0].data.reshape(-1) if self._bias is not None \
            else np.zeros(dims[1], dt)
        y = np.empty(dims, dt)
        keep = self._x.reshape(dims) if self._x is not None else np.empty((0, 0, 0), dt)
        cpu_norm.scale_forward(np.ascontiguousarray(x.reshape(dims)), s, b, y, keep)
        top[0].data = y.reshape(x.shape)

    def _backward_compiled(self, dy, top, propagate_down, bottom):
        """ds, db and dx in one pass over dy (and x)."""
        dims, dt = self._dims, self.dtype
        none = np.empty(0, dt)
        want_s, want_b = self.param_propagate_down[0], \
            self._bias is not None and self.param_propagate_down[-1]
        x = (self._x if top[0] is bottom[0] else bottom[0].data) if want_s else None
        dx = np.empty(dims, dt) if propagate_down[0] else np.empty((0, 0, 0), dt)
        for blob in self.blobs[:2 if want_b else 1]:
            if not blob.diff.flags.c_contiguous:   # accumulate through a view
                blob.diff = np.ascontiguousarray(blob.diff)
        cpu_norm.scale_backward(
            np.ascontiguousarray(dy.reshape(dims)),
            np.ascontiguousarray(x.reshape(dims)) if want_s else np.empty((0, 0, 0), dt),
            self.blobs[0].data.reshape(-1),
            self.blobs[0].diff.reshape(-1) if want_s else none,
            self._bias.blobs[0].diff.reshape(-1) if want_b else none, dx)
        if propagate_down[0]:
            bottom[0].diff = dx.reshape(dy.shape)

    def _scale_grad(self, bottom):
        """Whether backward computes the scale's (or bottom[1]'s) gradient; for
        bottom[1] that is unknown here, so assume it is."""
        return self.param_propagate_down[0] if len(bottom) == 1 else True

    def backward(self, top, propagate_down, bottom):
        if self._pair_pending is not None:
            self._pair_pending.materialize()
        dy = top[0].diff
        xp = top[0].xp
        if self._compiled(dy, bottom):
            self._backward_compiled(dy, top, propagate_down, bottom)
            return
        if self._bias is not None and self.param_propagate_down[-1]:
            self._bias.backward(top, [False], [top[0]])
        learned = len(bottom) == 1
        scale = self._operand(bottom)
        if kernels.active(dy):
            if (self.param_propagate_down[0] if learned else propagate_down[1]):
                x = self._x if top[0] is bottom[0] else bottom[0].data
                _kernel_grad(scale, learned, self._dims, dy, x)
            if propagate_down[0]:
                bottom[0].diff = norm_kernels.scale_forward(dy, self._dims, scale.data)
            return
        dx = xp.empty(self._dims, dy.dtype)  # bottom's new diff (dy may be shared)
        if (self.param_propagate_down[0] if learned else propagate_down[1]):
            x = self._x if top[0] is bottom[0] else bottom[0].data
            dyx = xp.multiply(dy.reshape(self._dims), x.reshape(self._dims), out=dx)
            ds = _sum_to(dyx, self._dims, scale.shape)  # dx as scratch
            if learned:
                scale.diff += ds
            else:
                scale.diff = ds
        if propagate_down[0]:
            s = scale.data.reshape(1, self._dims[1], 1)
            xp.multiply(dy.reshape(self._dims), s, out=dx)
            bottom[0].diff = dx.reshape(dy.shape)
