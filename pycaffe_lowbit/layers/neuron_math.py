"""Arithmetic neuron layers, each computed as BVLC Caffe computes it (the
activation functions, ReLU to PReLU, are in ``neuron.py``).

Bottom: any shape. Top: the bottom's shape. x is the bottom, y the top,
dy / dx their diffs.

  AbsVal     y = |x|                       dx = dy sign(x)   (sign(0) = 0)
  Power      y = (shift + scale x)^power   dx = dy power scale (shift + scale x)^(power-1)
  Exp        y = base^(shift + scale x)    dx = dy y scale ln(base)   (base -1: e)
  Log        y = log_base(shift + scale x) dx = dy scale / (ln(base) (shift + scale x))
  Threshold  y = 1 if x > threshold else 0 (forward only, as in Caffe)
  Clip       y = max(min, min(x, max))     dx = dy (min <= x <= max)

In place (``top[0] is bottom[0]``): Caffe allows it for every layer here but
AbsVal. Exp and Threshold stay exact in place. Power, Log and Clip read the
bottom data in backward, which in place already holds y; we read it too, as
Caffe does, so in-place gradients equal Caffe's (not the true ones).
"""
import math

from .. import kernels
from ..core import backend
from ..kernels import neuron as neuron_kernels
from .neuron import NeuronLayer
from .registry import register

_launch = neuron_kernels.elementwise   # the kernel path: neuron.cu's lowbit_<name>


@register("AbsVal")
class AbsVal(NeuronLayer):
    """y = |x|; dx = dy sign(x). Not in place (Caffe forbids it)."""

    def layer_setup(self, bottom, top):
        if top[0] is bottom[0]:
            raise self.error("AbsVal does not allow in-place computation "
                             "(give the top a name different from the bottom)")

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("absval_fwd", x, top[0].data)
        backend.get_array_module(x).abs(x, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = bottom[0].data
            if kernels.active(x):
                return _launch("absval_bwd", top[0].diff, x, bottom[0].diff)
            xp = backend.get_array_module(x)
            bottom[0].diff[...] = top[0].diff * xp.sign(x)


@register("Power")
class Power(NeuronLayer):
    """y = (shift + scale x)^power with Caffe's special cases:
    power * scale == 0 gives the constant 1 (power 0) or shift^power, with dx = 0;
    power == 1 gives dx = dy scale."""

    def layer_setup(self, bottom, top):
        p = self.param.power_param
        t = self.dtype.type
        self.power, self.scale, self.shift = t(p.power), t(p.scale), t(p.shift)
        self.diff_scale = self.power * self.scale
        self._kernel_args = (self.power, self.scale, self.shift, self.diff_scale)

    def forward(self, bottom, top):
        y = top[0].data
        if kernels.active(y):
            return _launch("power_fwd", bottom[0].data, y, *self._kernel_args)
        if self.diff_scale == 0:
            y[...] = 1 if self.power == 0 else self.shift ** self.power
            return
        x = bottom[0].data
        xp = backend.get_array_module(x)
        v = x * self.scale if self.scale != 1 else x
        if self.shift != 0:
            v = v + self.shift
        y[...] = xp.power(v, self.power) if self.power != 1 else v

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if kernels.active(top[0].diff):
            return _launch("power_bwd", top[0].diff, bottom[0].data, top[0].data,
                           bottom[0].diff, *self._kernel_args)
        if self.diff_scale == 0:
            bottom[0].diff[...] = 0
            return
        if self.power == 1:
            dx = self.diff_scale * top[0].diff
        else:
            x = bottom[0].data   # in place: Caffe reads y here too
            if self.power == 2:
                d = x * (self.diff_scale * self.scale)
                if self.shift != 0:
                    d = d + self.diff_scale * self.shift
            elif self.shift == 0:
                d = top[0].data / x * self.power
            else:
                v = x * self.scale if self.scale != 1 else x
                v = v + self.shift
                d = top[0].data / v
                if self.diff_scale != 1:
                    d = d * self.diff_scale
            dx = top[0].diff * d
        bottom[0].diff[...] = dx


def _log_base(layer, base):
    """ln(base) in the layer's dtype; base -1 means e (ln 1 exactly)."""
    t = layer.dtype.type
    if base == -1:
        return t(1)
    if not base > 0:
        raise layer.error("base must be strictly positive or -1 (for e), got %g" % base)
    log_base = t(math.log(t(base)))
    if math.isinf(log_base) or math.isnan(log_base):
        raise layer.error("log(base) = log(%g) is not finite" % base)
    return log_base


@register("Exp")
class Exp(NeuronLayer):
    """y = base^(shift + scale x) = outer exp(inner x), inner = scale ln(base),
    outer = base^shift (base -1: e)."""

    def layer_setup(self, bottom, top):
        p = self.param.exp_param
        t = self.dtype.type
        log_base = _log_base(self, p.base)
        self.inner_scale = log_base * t(p.scale)
        if p.shift == 0:
            self.outer_scale = t(1)
        elif p.base == -1:
            self.outer_scale = t(math.exp(t(p.shift)))
        else:
            self.outer_scale = t(math.pow(t(p.base), t(p.shift)))

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("exp_fwd", x, top[0].data, self.inner_scale, self.outer_scale)
        xp = backend.get_array_module(x)
        y = xp.exp(x if self.inner_scale == 1 else x * self.inner_scale)
        top[0].data[...] = y if self.outer_scale == 1 else y * self.outer_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if kernels.active(top[0].diff):
            return _launch("exp_bwd", top[0].diff, top[0].data, bottom[0].diff, self.inner_scale)
        dx = top[0].data * top[0].diff
        bottom[0].diff[...] = dx if self.inner_scale == 1 else dx * self.inner_scale


@register("Log")
class Log(NeuronLayer):
    """y = ln(shift + scale x) / ln(base) (base -1: e)."""

    def layer_setup(self, bottom, top):
        p = self.param.log_param
        t = self.dtype.type
        log_base = _log_base(self, p.base)
        if log_base == 0:
            raise self.error("base 1 has no logarithm (1 / ln(1) is infinite)")
        self.base_scale = t(1) / log_base
        self.input_scale, self.input_shift = t(p.scale), t(p.shift)
        self.backward_num_scale = self.input_scale / log_base
        self._kernel_args = (self.input_scale, self.input_shift, self.backward_num_scale)

    def _inner(self, x):
        v = x * self.input_scale if self.input_scale != 1 else x
        return v + self.input_shift if self.input_shift != 0 else v

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("log_fwd", x, top[0].data, *self._kernel_args[:2], self.base_scale)
        xp = backend.get_array_module(x)
        y = xp.log(self._inner(x))
        top[0].data[...] = y if self.base_scale == 1 else y * self.base_scale

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if kernels.active(top[0].diff):
            return _launch("log_bwd", top[0].diff, bottom[0].data, bottom[0].diff,
                           *self._kernel_args)
        d = 1 / self._inner(bottom[0].data)   # in place: Caffe reads y here too
        if self.backward_num_scale != 1:
            d = d * self.backward_num_scale
        bottom[0].diff[...] = top[0].diff * d


@register("Threshold")
class Threshold(NeuronLayer):
    """y = 1 if x > threshold else 0. No backward (Caffe's is NOT_IMPLEMENTED)."""

    def layer_setup(self, bottom, top):
        self.threshold = self.dtype.type(self.param.threshold_param.threshold)

    def forward(self, bottom, top):
        if kernels.active(bottom[0].data):
            return _launch("threshold_fwd", bottom[0].data, top[0].data, self.threshold)
        top[0].data[...] = bottom[0].data > self.threshold

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise NotImplementedError(
                "layer '%s' (Threshold) has no backward, as in Caffe" % self.name)


@register("Clip")
class Clip(NeuronLayer):
    """y = max(min, min(x, max)); dx = dy where min <= x <= max, else 0.
    NaN gives min, as Caffe's std::max(min, std::min(x, max)) does."""

    def layer_setup(self, bottom, top):
        p = self.param.clip_param
        if not self.param.HasField("clip_param") or not (
                p.HasField("min") and p.HasField("max")):
            raise self.error("needs clip_param { min: ... max: ... } (both required)")
        self.min, self.max = self.dtype.type(p.min), self.dtype.type(p.max)

    def forward(self, bottom, top):
        x = bottom[0].data
        if kernels.active(x):
            return _launch("clip_fwd", x, top[0].data, self.min, self.max)
        xp = backend.get_array_module(x)
        v = xp.where(self.max < x, self.max, x)
        top[0].data[...] = xp.where(self.min < v, v, self.min)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = bottom[0].data   # in place: Caffe reads y here too
            if kernels.active(x):
                return _launch("clip_bwd", top[0].diff, x, bottom[0].diff, self.min, self.max)
            bottom[0].diff[...] = top[0].diff * ((x >= self.min) & (x <= self.max))
