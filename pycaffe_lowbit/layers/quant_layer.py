"""Quant: the HWGQ fork's elementwise activation quantizer (``quant_param``).

Bottom: any shape. Top: same shape. In place allowed.

    forward_func   hwgq (default) | sign | hard_tanh | relu
    backward_func  relu (default) | hard_tanh

forward  hwgq:      y = -negative_slope for x <= 0, else the level c_i of
                    ``centers`` for the first midpoint t_i >= x (see
                    ``quant.HWGQ``); sign: y = x >= 0 ? 1 : -1;
                    hard_tanh: clamp(x, -1, 1); relu: x > 0 ? x : negative_slope x
backward relu:      dx = dy (x > 0 ? 1 : negative_slope) [x <= clip]
         hard_tanh: dx = dy [-clip <= x <= clip]

clip = clip_thr when positive, else no clip. The backward is chosen on its own:
the default ``relu`` applies whatever the forward is (so ``hard_tanh`` alone
passes no gradient for x <= 0), as in the fork. ``thrs`` is ignored, as the
fork ignores it (the thresholds are the midpoints of the centers). In place,
the input is kept for the backward (the gradient depends on x, not on y).
"""
from .. import quant
from ..logs.glog import LOGGER
from .neuron import NeuronLayer
from .registry import register

_FORWARD = ("hwgq", "sign", "hard_tanh", "relu")
_BACKWARD = ("relu", "hard_tanh")


class ActivationQuantizerLayer(NeuronLayer):
    """y = quantizer.forward(x) elementwise, dx = quantizer.backward(x, dy).
    Subclasses set ``self.quantizer`` in ``layer_setup``. In place, the input is
    kept for the backward (the pseudo-gradient depends on x, not on y)."""
    _x = None   # the kept input of an in-place forward

    def forward(self, bottom, top):
        x = bottom[0].data
        self._x = x.copy() if top[0] is bottom[0] else None
        self.quantizer.forward(x, out=top[0].data)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self._x if self._x is not None else bottom[0].data
            self.quantizer.backward(x, top[0].diff, out=bottom[0].diff)


@register("Quant")
class Quant(ActivationQuantizerLayer):
    """y = q(x) elementwise with a straight-through pseudo-gradient; see above."""

    def layer_setup(self, bottom, top):
        qp = self.param.quant_param
        self.quantizer = quant.ActivationQuantizer(self._value(qp), self._gradient(qp))
        if len(qp.thrs):
            LOGGER.warning("layer '%s' (Quant): quant_param.thrs is ignored; the "
                           "thresholds are the midpoints of the centers", self.name)

    def _value(self, qp):
        name = qp.forward_func
        if name == "hwgq":
            try:
                return quant.HWGQ(list(qp.centers), qp.negative_slope)
            except ValueError as exc:
                raise self.error("quant_param: %s" % exc) from None
        if name == "sign":
            return quant.Sign()
        if name == "hard_tanh":
            return quant.HardTanh()
        if name == "relu":
            return quant.LeakyReLU(qp.negative_slope)
        raise self.error("quant_param.forward_func %r is not one of %s"
                         % (name, ", ".join(_FORWARD)))

    def _gradient(self, qp):
        name = qp.backward_func
        if name == "relu":
            return quant.ReLUGrad(qp.negative_slope, qp.clip_thr)
        if name == "hard_tanh":
            return quant.HardTanhGrad(qp.clip_thr)
        raise self.error("quant_param.backward_func %r is not one of %s"
                         % (name, ", ".join(_BACKWARD)))
