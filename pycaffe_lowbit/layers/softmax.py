"""Softmax along one axis (softmax_param.axis, default 1; negative counts from the end).

  y_c = exp(x_c - max_k x_k) / sum_k exp(x_k - max_k x_k)
  dL/dx_c = (dL/dy_c - sum_k dL/dy_k y_k) y_c

Bottom: any shape. Top: same shape. In place works (backward reads top only).
"""
from .. import kernels
from ..core import backend
from ..kernels import softmax as softmax_kernels
from .base import Layer
from .registry import register


def softmax(x, axis):
    """The numerically stable softmax of ``x`` along ``axis`` (a new array)."""
    if kernels.active(x):
        return softmax_kernels.forward(x, axis)
    xp = backend.get_array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def canonical_axis(layer, blob, axis, what="axis"):
    """Caffe's CanonicalAxisIndex with an error naming the layer."""
    try:
        return blob.canonical_axis(axis)
    except IndexError:
        raise layer.error("%s %d out of range for a %d-axis bottom of shape %s"
                          % (what, axis, blob.num_axes, blob.shape)) from None


@register("Softmax")
class Softmax(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], self.param.softmax_param.axis)
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        if kernels.active(bottom[0].data):
            softmax_kernels.forward(bottom[0].data, self.axis, out=top[0].data)
            return
        top[0].data[...] = softmax(bottom[0].data, self.axis)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y, dy = top[0].data, top[0].diff
            if kernels.active(y):
                softmax_kernels.backward(dy, y, self.axis, bottom[0].diff)
                return
            bottom[0].diff[...] = (dy - (dy * y).sum(axis=self.axis, keepdims=True)) * y
