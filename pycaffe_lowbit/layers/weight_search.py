"""Weight-search convolution and inner product: categorical search over a value set.

WeightSearchConvolution / WeightSearchInnerProduct take the usual
``convolution_param`` / ``inner_product_param`` and a ``weight_search_param``
(values listed, or a named ``value_set``; see ``quant.weight_search``). Blob 0
is not W but its logits a, of shape W.shape + (K,) (what a .caffemodel
stores); blob 1 is the bias. With tau the temperature at the current iteration:

    p = softmax((a + g G) / tau);  W = sum_k y_k v_k,  y = one-hot(argmax p)
        (HARD, and always in TEST, where there is no noise) or y = p (SOFT)
    top = conv(x, W) + b   (or x W^T + b)
    dL/da_k = p_k (v_k - sum_j p_j v_j) dL/dW / tau,  dL/dW the ordinary
        weight gradient; dL/dx with W

    tau = max(init_temperature * temperature_decay ^ (iter // (iters_per_epoch
          * temperature_step)), min_temperature)

``iter`` comes from the solver (``Net.set_iteration``, called at the start of
every iteration; 0 until then). New logits are log(1/K) + 1e-5 (U - 0.5);
``weight_filler`` is not used. ``pycaffe_lowbit.model_zoo.ws_export`` writes
the net as plain Convolution / InnerProduct layers with W = v[argmax a].
"""
import math

from ..core.blob import Blob
from ..proto import caffe_pb2
from ..quant.weight_search import WeightSearch, named_value_set, temperature
from .conv import Convolution
from .inner_product import InnerProduct
from .registry import register

_SOFT = caffe_pb2.WeightSearchParameter.SOFT


def layer_values(layer_param):
    """The value set of a weight-search LayerParameter (a tuple of floats);
    ValueError when it is missing, doubled or unknown."""
    wp = layer_param.weight_search_param
    if len(wp.value) and wp.value_set:
        raise ValueError("give either value or value_set, not both")
    if len(wp.value):
        return tuple(float(v) for v in wp.value)
    if not wp.value_set:
        raise ValueError("weight_search_param needs a value set: value: ... (repeated) "
                         "or value_set: \"1b\" | \"po2-2b\" | \"po2-3b\" | \"po2-4b\" | "
                         "\"int-Nb\"")
    return named_value_set(wp.value_set)


class _WeightSearch:
    """Mixin: blob 0 holds logits; the GEMMs use W from them (module docstring)."""

    iteration = 0

    def layer_setup(self, bottom, top):
        wp = self.param.weight_search_param
        try:
            values = layer_values(self.param)
            self.search = WeightSearch(values, hard=wp.mode != _SOFT,
                                       gumbel_scale=wp.gumbel_scale)
        except ValueError as exc:
            raise self.error("weight_search_param: %s" % exc) from None
        if wp.init_temperature <= 0 or wp.min_temperature <= 0:
            raise self.error("weight_search_param: init_temperature and min_temperature "
                             "must be > 0 (got %g, %g)" % (wp.init_temperature,
                                                          wp.min_temperature))
        self._p = None
        super().layer_setup(bottom, top)

    def init_params(self, shapes, fillers, names=("weight", "bias")):
        """Blob 0 becomes the logits, W.shape + (K,), filled uniformly in
        log(1/K) +- 5e-6."""
        k = self.search.values.size
        self.weight_shape = tuple(shapes[0])
        filler = caffe_pb2.FillerParameter(type="uniform")
        filler.min = math.log(1.0 / k) - 5e-6
        filler.max = math.log(1.0 / k) + 5e-6
        super().init_params([self.weight_shape + (k,)] + list(shapes[1:]),
                            [filler] + list(fillers[1:]), ("logits",) + tuple(names[1:]))

    def set_iteration(self, iteration):
        self.iteration = int(iteration)

    def temperature(self):
        wp = self.param.weight_search_param
        return temperature(wp.init_temperature, wp.temperature_decay,
                           wp.iters_per_epoch * wp.temperature_step, wp.min_temperature,
                           self.iteration)

    def _forward_weight(self):
        train = self.phase == caffe_pb2.TRAIN
        self._tau = self.temperature()
        w, self._p = self.search.forward(self.blobs[0].data, self._tau,
                                         hard=None if train else True, noise=train)
        self._w_eff = w
        return w

    def _backward_weight(self):
        return self._w_eff

    def backward(self, top, propagate_down, bottom):
        """The ordinary backward with W in place of the logits, then dL/da."""
        logits = self.blobs[0]
        if not self.param_propagate_down[0]:
            super().backward(top, propagate_down, bottom)
            return
        w = Blob(self.weight_shape, dtype=logits.dtype, xp=logits.xp)
        w.data = self._w_eff
        self.blobs[0] = w
        try:
            super().backward(top, propagate_down, bottom)
        finally:
            self.blobs[0] = logits
        self.search.backward(self._p, w.diff, self._tau, into=logits.diff)


@register("WeightSearchConvolution")
class WeightSearchConvolution(_WeightSearch, Convolution):
    """Convolution whose weights are searched over a value set; see the module
    docstring."""


@register("WeightSearchInnerProduct")
class WeightSearchInnerProduct(_WeightSearch, InnerProduct):
    """InnerProduct whose weights are searched over a value set; see the module
    docstring."""
