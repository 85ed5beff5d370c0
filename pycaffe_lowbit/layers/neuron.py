"""Neuron layers: elementwise y = f(x), one bottom, one top of the same shape.

NeuronLayer is Caffe's NeuronLayer: the top takes the bottom's shape, and the
layer may run in place (``top[0] is bottom[0]``), so each backward reads only
what is still valid then.

  ReLU     y = max(x, 0) + s min(x, 0)      dL/dx = dL/dy (1 if x > 0 else s)
  Sigmoid  y = 1 / (1 + exp(-x))            dL/dx = dL/dy y (1 - y)
  TanH     y = tanh(x)                      dL/dx = dL/dy (1 - y^2)

ReLU's backward reads the bottom data, as Caffe's does; in place that is y,
whose sign is the sign of x for s >= 0. Sigmoid and TanH read the top data.
"""
from .. import kernels
from ..core import backend
from .base import Layer
from .registry import register


class NeuronLayer(Layer):
    """One bottom, one top of the bottom's shape; in-place allowed."""
    exact_num_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)


@register("ReLU")
class ReLU(NeuronLayer):
    """y = max(x, 0) + negative_slope * min(x, 0)."""

    def layer_setup(self, bottom, top):
        self.negative_slope = self.param.relu_param.negative_slope

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            kernels.launch("neuron", "lowbit_relu_fwd", x.size, x.size, x, top[0].data,
                           self.negative_slope)
            return
        xp = backend.get_array_module(x)
        if self.negative_slope == 0:
            xp.maximum(x, 0, out=top[0].data)     # one pass, no temporaries
        else:
            top[0].data[...] = xp.where(x > 0, x, x * self.negative_slope)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data  # in place: the top data, same sign for slope >= 0
        dy = top[0].diff
        if kernels.active(x):
            kernels.launch("neuron", "lowbit_relu_bwd", x.size, x.size, dy, x, bottom[0].diff,
                           self.negative_slope)
            return
        xp = backend.get_array_module(x)
        if self.negative_slope == 0:
            xp.multiply(dy, x > 0, out=bottom[0].diff)
        else:
            bottom[0].diff[...] = xp.where(x > 0, dy, dy * self.negative_slope)


@register("Sigmoid")
class Sigmoid(NeuronLayer):
    """y = 1 / (1 + exp(-x)), computed as 0.5 tanh(0.5 x) + 0.5 (as Caffe)."""

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            kernels.launch("neuron", "lowbit_sigmoid_fwd", x.size, x.size, x, top[0].data)
            return
        xp = backend.get_array_module(x)
        top[0].data[...] = 0.5 * xp.tanh(0.5 * x) + 0.5

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            if kernels.active(y):
                kernels.launch("neuron", "lowbit_sigmoid_bwd", y.size, y.size, top[0].diff, y,
                               bottom[0].diff)
                return
            bottom[0].diff[...] = top[0].diff * y * (1 - y)


@register("TanH")
class TanH(NeuronLayer):
    """y = tanh(x)."""

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            kernels.launch("neuron", "lowbit_tanh_fwd", x.size, x.size, x, top[0].data)
            return
        xp = backend.get_array_module(x)
        top[0].data[...] = xp.tanh(x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            y = top[0].data
            if kernels.active(y):
                kernels.launch("neuron", "lowbit_tanh_bwd", y.size, y.size, top[0].diff, y,
                               bottom[0].diff)
                return
            bottom[0].diff[...] = top[0].diff * (1 - y * y)
