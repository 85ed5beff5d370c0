"""Neuron layers: elementwise y = f(x), one bottom, one top of the same shape.

NeuronLayer is Caffe's NeuronLayer: the top takes the bottom's shape, and the
layer may run in place (``top[0] is bottom[0]``), so each backward reads only
what is still valid then.

The activation functions live here; the arithmetic ones (AbsVal, Power, Exp,
Log, Threshold, Clip) in ``neuron_math.py``. Each computes as BVLC Caffe does.

  ReLU     y = max(x, 0) + s min(x, 0)      dL/dx = dL/dy (1 if x > 0 else s)
  Sigmoid  y = 1 / (1 + exp(-x))            dL/dx = dL/dy y (1 - y)
  TanH     y = tanh(x)                      dL/dx = dL/dy (1 - y^2)
  ELU      y = max(x, 0) + alpha (exp(min(x, 0)) - 1)
           dx = dy ((x > 0) + (alpha + y) (x <= 0))
  BNLL     y = x + log(1 + exp(-x)) for x > 0, log(1 + exp(x)) otherwise
           dx = dy e / (e + 1),  e = exp(min(x, 50))
  Swish    y = x s, s = sigmoid(beta x)    dx = dy (beta y + s (1 - beta y))
  PReLU    y = max(x, 0) + a_c min(x, 0), one learnable slope a_c per channel
           (axis 1; shape (C,)) or one shared slope (channel_shared; shape ());
           dx = dy ((x > 0) + a_c (x <= 0)),  da_c += sum over n, spatial of dy x (x <= 0)

ReLU runs through oneDNN's eltwise_relu on float32 NumPy arrays
(``_relu_onednn``; ``relu_param.engine: CAFFE`` keeps the NumPy code below).
ReLU's backward reads the bottom data, as Caffe's does; in place that is y,
whose sign is the sign of x for s >= 0. Sigmoid and TanH read the top data.
ELU and Swish stay exact in place; BNLL reads the bottom data in backward,
which in place already holds y, as Caffe's does (so in-place gradients equal
Caffe's, not the true ones). PReLU keeps a copy of x for backward when in
place, as Caffe does.
"""
from .. import kernels
from ..core import backend, fillers
from ..kernels import neuron as neuron_kernels
from ..proto import caffe_pb2
from . import _relu_onednn
from .base import Layer
from .registry import register

BNLL_THRESHOLD = 50.0  # Caffe's kBNLL_THRESHOLD
_launch = neuron_kernels.elementwise   # the kernel path: neuron.cu's lowbit_<name>


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
        if _relu_onednn.forward(self, bottom, top):   # oneDNN's multi-threaded kernel
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
        if _relu_onednn.backward(self, top, bottom):
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


def _sigmoid(z, xp):
    """Caffe's CPU sigmoid: 0.5 tanh(0.5 z) + 0.5."""
    return 0.5 * xp.tanh(0.5 * z) + 0.5


@register("ELU")
class ELU(NeuronLayer):
    """Exponential linear unit, elu_param.alpha (default 1)."""

    def layer_setup(self, bottom, top):
        self.alpha = self.dtype.type(self.param.elu_param.alpha)

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("elu_fwd", x, top[0].data, self.alpha)
        xp = backend.get_array_module(x)
        top[0].data[...] = xp.maximum(x, 0) + self.alpha * (xp.exp(xp.minimum(x, 0)) - 1)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x, y, dy = bottom[0].data, top[0].data, top[0].diff
        if kernels.active(x):
            return _launch("elu_bwd", dy, x, y, bottom[0].diff, self.alpha)
        xp = backend.get_array_module(x)
        bottom[0].diff[...] = dy * xp.where(x > 0, 1, self.alpha + y)


@register("BNLL")
class BNLL(NeuronLayer):
    """Binomial normal log likelihood y = log(1 + exp(x)), overflow-safe."""

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("bnll_fwd", x, top[0].data)
        xp = backend.get_array_module(x)
        # x > 0: x + log(1 + exp(-x)); else log(1 + exp(x)) -- both are this:
        top[0].data[...] = xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        x = bottom[0].data
        if kernels.active(x):
            return _launch("bnll_bwd", top[0].diff, x, bottom[0].diff, BNLL_THRESHOLD)
        xp = backend.get_array_module(x)
        e = xp.exp(xp.minimum(x, BNLL_THRESHOLD))
        bottom[0].diff[...] = top[0].diff * e / (e + 1)


@register("Swish")
class Swish(NeuronLayer):
    """y = x sigmoid(beta x), swish_param.beta (default 1); backward reads y and
    the stored sigmoid, so in place is exact."""

    def layer_setup(self, bottom, top):
        self.beta = self.dtype.type(self.param.swish_param.beta)
        self.sigmoid_output = None

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if kernels.active(x):
            self.sigmoid_output = xp.empty_like(x)
            return _launch("swish_fwd", x, self.sigmoid_output, top[0].data, self.beta)
        self.sigmoid_output = _sigmoid(x * self.beta, xp)
        top[0].data[...] = x * self.sigmoid_output

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if kernels.active(top[0].diff):
            return _launch("swish_bwd", top[0].diff, top[0].data, self.sigmoid_output,
                           bottom[0].diff, self.beta)
        by = self.beta * top[0].data
        s = self.sigmoid_output
        bottom[0].diff[...] = top[0].diff * (by + s * (1 - by))


@register("PReLU")
class PReLU(NeuronLayer):
    """Parametric ReLU; prelu_param.filler defaults to constant 0.25. Bottom:
    (N, C, ...) with at least 2 axes. Blob 0: slopes, (C,) or () if channel_shared
    (a preloaded blob only needs the right count)."""

    def layer_setup(self, bottom, top):
        p = self.param.prelu_param
        self._check_axes(bottom)
        channels = bottom[0].shape[1]
        self.channel_shared = p.channel_shared
        if not self.blobs:
            self.blobs = [self.new_blob(() if self.channel_shared else (channels,))]
            filler = p.filler
            if not p.HasField("filler"):
                filler = caffe_pb2.FillerParameter(type="constant", value=0.25)
            fillers.fill(self.blobs[0], filler)
        want = 1 if self.channel_shared else channels
        if self.blobs[0].count != want:
            raise self.error("slope blob has %d values, expected %d (%s)" % (
                self.blobs[0].count, want,
                "channel_shared" if self.channel_shared else "one per channel"))
        self._bottom_memory = None

    def _check_axes(self, bottom):
        if bottom[0].num_axes < 2:
            raise self.error("bottom must have at least 2 axes (N, C, ...), got shape %s"
                             % (bottom[0].shape,))

    def reshape(self, bottom, top):
        self._check_axes(bottom)
        top[0].reshape(bottom[0].shape)

    def _slopes(self, ndim):
        """The slopes shaped to broadcast over a bottom of ``ndim`` axes."""
        a = self.blobs[0].data
        if self.channel_shared:
            return a.reshape((1,) * ndim)
        return a.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if top[0] is bottom[0]:
            self._bottom_memory = x.copy()
        if kernels.active(x):
            return _launch("prelu_fwd", x, self.blobs[0].data, top[0].data,
                           *neuron_kernels.prelu_layout(x, self.channel_shared))
        top[0].data[...] = xp.maximum(x, 0) + self._slopes(x.ndim) * xp.minimum(x, 0)

    def backward(self, top, propagate_down, bottom):
        x = self._bottom_memory if top[0] is bottom[0] else bottom[0].data
        dy = top[0].diff
        if kernels.active(x):
            return neuron_kernels.prelu_backward(
                dy, x, self.blobs[0].data, self.channel_shared,
                self.blobs[0].diff if self.param_propagate_down[0] else None,
                bottom[0].diff if propagate_down[0] else None)
        # the slope gradient first: in place, writing dx overwrites dy
        if self.param_propagate_down[0]:
            g = dy * x * (x <= 0)
            axes = None if self.channel_shared else (0,) + tuple(range(2, x.ndim))
            w = self.blobs[0]
            w.diff[...] += g.sum(axis=axes).reshape(w.diff.shape)
        if propagate_down[0]:
            xp = backend.get_array_module(x)
            bottom[0].diff[...] = dy * xp.where(x > 0, 1, self._slopes(x.ndim))
