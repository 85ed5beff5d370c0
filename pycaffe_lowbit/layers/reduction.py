"""Reduction and ArgMax, as BVLC Caffe computes them.

Reduction  bottom: any shape; top: the bottom's axes before ``axis`` (a scalar,
           shape (), for axis 0). Every axis from ``axis`` on is reduced:
               SUM    y = coeff * sum x          dx = coeff * dy
               ASUM   y = coeff * sum |x|        dx = coeff * dy * sign(x)  (sign(0) = 0)
               SUMSQ  y = coeff * sum x^2        dx = 2 coeff * dy * x
               MEAN   y = coeff/D * sum x        dx = coeff/D * dy
           with D the number of values reduced per output.

ArgMax     the ``top_k`` largest values of each group, largest first; among
           equal values the larger index comes first (Caffe sorts (value, index)
           pairs descending with std::partial_sort).
           With ``axis``: groups run along that axis; top = bottom shape with that
               axis -> top_k, holding the indices, or the values if ``out_max_val``.
           Without: groups are the flattened samples (count(1) values); top =
               (N, 1, top_k) -- (N, 2, top_k) with ``out_max_val``: indices then
               values -- padded with 1s to the bottom's number of axes.
           Indices are stored as floats. Forward only: no gradient.
"""
from ..core import backend
from ..proto import caffe_pb2
from .base import Layer
from .registry import register
from .shape_ops import canonical_axis

_R = caffe_pb2.ReductionParameter


@register("Reduction")
class Reduction(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        self.op = self.param.reduction_param.operation
        if self.op not in (_R.SUM, _R.ASUM, _R.SUMSQ, _R.MEAN):
            raise self.error("Unknown reduction op %d (expected SUM, ASUM, SUMSQ or MEAN)"
                             % self.op)

    def reshape(self, bottom, top):
        b = bottom[0]
        rp = self.param.reduction_param
        self.axis = canonical_axis(self, b, rp.axis)
        top[0].reshape(b.shape[:self.axis])
        self.num = b.count_range(0, self.axis)
        self.dim = b.count_range(self.axis)
        self.coeff = float(rp.coeff)
        if self.op == _R.MEAN:
            self.coeff /= self.dim

    def forward(self, bottom, top):
        x = bottom[0].data.reshape(self.num, self.dim)
        xp = backend.get_array_module(x)
        if self.op in (_R.SUM, _R.MEAN):
            y = x.sum(axis=1)
        elif self.op == _R.ASUM:
            y = xp.abs(x).sum(axis=1)
        else:
            y = (x * x).sum(axis=1)
        if self.coeff != 1:
            y = y * self.dtype.type(self.coeff)
        top[0].data = y.reshape(top[0].shape).astype(self.dtype, copy=False)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        b = bottom[0]
        xp = backend.get_array_module(b.data)
        g = top[0].diff.reshape(self.num, 1) * self.dtype.type(self.coeff)
        if self.op in (_R.SUM, _R.MEAN):
            dx = xp.broadcast_to(g, (self.num, self.dim))
        else:
            x = b.data.reshape(self.num, self.dim)
            dx = xp.sign(x) * g if self.op == _R.ASUM else x * (2 * g)
        # a copy: dx may be a read-only broadcast of (or a view into) the top's diff
        b.diff = xp.array(dx, dtype=self.dtype).reshape(b.shape)


@register("ArgMax")
class ArgMax(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        ap = self.param.argmax_param
        self.out_max_val = ap.out_max_val
        self.top_k = int(ap.top_k)
        self.has_axis = ap.HasField("axis")
        if self.top_k < 1:
            raise self.error("top_k must not be less than 1 (got %d)" % self.top_k)
        b = bottom[0]
        if self.has_axis:
            self.axis = canonical_axis(self, b, ap.axis)
            if self.top_k > b.shape[self.axis]:
                raise self.error("top_k (%d) must be less than or equal to the dimension "
                                 "of axis %d (%d)" % (self.top_k, self.axis,
                                                      b.shape[self.axis]))
        elif self.top_k > b.count_range(1):
            raise self.error("top_k (%d) must be less than or equal to the dimension of "
                             "the flattened bottom blob per instance (%d)"
                             % (self.top_k, b.count_range(1)))

    def reshape(self, bottom, top):
        b = bottom[0]
        if self.has_axis:
            shape = list(b.shape)
            shape[self.axis] = self.top_k
        else:
            shape = [1] * max(b.num_axes, 3)
            shape[0] = b.shape[0]
            shape[1] = 2 if self.out_max_val else 1
            shape[2] = self.top_k
        top[0].reshape(shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if self.has_axis:
            x = xp.moveaxis(x, self.axis, -1)
        else:
            x = x.reshape(x.shape[0], -1)
        # Ascending stable order is (value, index) ascending; reversed, it is
        # Caffe's (value, index) descending.
        order = xp.argsort(x, axis=-1, kind="stable")[..., ::-1][..., :self.top_k]
        values = xp.take_along_axis(x, order, axis=-1)
        if self.has_axis:
            out = values if self.out_max_val else order
            out = xp.moveaxis(out, -1, self.axis)
        elif self.out_max_val:
            out = xp.stack([order.astype(self.dtype), values.astype(self.dtype)], axis=1)
        else:
            out = order
        top[0].data = xp.ascontiguousarray(out.astype(self.dtype)).reshape(top[0].shape)
