"""QNN layers (Moons et al.; BinaryNet at nb = 0): n-bit activations and weights.

QNNActivation (``qnn_activation_param { nb nonlinearity }``), elementwise, any
shape, in place allowed; the gradient depends on x, so in place the input is
kept for the backward:

    v = 2 round(hs(x) 2^nb) / 2^nb - 1,  hs(x) = clip((x + 1) / 2, 0, 1)
    HARDTANH  y = clip(v, -1, 1)             (nb = 0: +1 if x >= 0 else -1)
    RELU      y = clip(v, 0, 1 - 2^(1-nb))
    dx = dy [|x| <= 1] [the outer clip inactive]

QNNConvolution / QNNInnerProduct (``qnn_weight_param { nb symmetric }`` plus
the usual ``convolution_param`` / ``inner_product_param``): the ordinary layer
computing with Q = q(W), one power-of-two scale per layer:

    f = floor(log2(1 / max|W|)),  Q = clip(round(W 2^(nb-1+f)), -2^(nb-1),
        2^(nb-1) - 1 (2^(nb-1) if symmetric)) / 2^(nb-1+f);   nb = 0: sign(W)
    dL/dW = the ordinary weight gradient (straight-through into the latent W)

The seed's training clips the latent W to [-1, 1] after every update and scales
its rate by 1 / sqrt(1.5 / (fan_in + fan_out)): ``param { clip_data: 1
glorot_lr_scale: true }`` on the weight (see ``ParamSpec``). The math lives in
``pycaffe_lowbit.quant.qnn``.
"""
from ..proto import caffe_pb2
from ..quant.qnn import QNNActivation as _ActivationQuantizer, QNNWeights
from .conv import Convolution
from .inner_product import InnerProduct
from .neuron import NeuronLayer
from .registry import register

_NONLINEARITY = {caffe_pb2.QNNActivationParameter.HARDTANH: "hardtanh",
                 caffe_pb2.QNNActivationParameter.RELU: "relu"}


@register("QNNActivation")
class QNNActivation(NeuronLayer):
    """y = q(x) with QNN's n-bit hardtanh / relu; see the module docstring."""

    def layer_setup(self, bottom, top):
        qp = self.param.qnn_activation_param
        try:
            self.quantizer = _ActivationQuantizer(qp.nb, _NONLINEARITY[qp.nonlinearity])
        except ValueError as exc:
            raise self.error("qnn_activation_param: %s" % exc) from None
        self._x = None

    def forward(self, bottom, top):
        x = bottom[0].data
        if top[0] is bottom[0]:
            self._x = x.copy()
        top[0].data[...] = self.quantizer.forward(x)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            x = self._x if top[0] is bottom[0] else bottom[0].data
            bottom[0].diff[...] = self.quantizer.backward(x, top[0].diff)


class _QNNWeight:
    """Mixin: the GEMMs use Q = QNNWeights(W), recomputed at every forward."""

    def layer_setup(self, bottom, top):
        super().layer_setup(bottom, top)
        wp = self.param.qnn_weight_param
        try:
            self.weight_quantizer = QNNWeights(wp.nb, wp.symmetric)
        except ValueError as exc:
            raise self.error("qnn_weight_param: %s" % exc) from None
        self._w_eff = None

    def _forward_weight(self):
        self._w_eff = self.weight_quantizer.forward(self.blobs[0].data)
        return self._w_eff

    def _backward_weight(self):
        return self._w_eff


@register("QNNConvolution")
class QNNConvolution(_QNNWeight, Convolution):
    """Convolution with n-bit weights Q; see the module docstring."""


@register("QNNInnerProduct")
class QNNInnerProduct(_QNNWeight, InnerProduct):
    """InnerProduct with n-bit weights Q; see the module docstring."""
