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
from .quant_layer import ActivationQuantizerLayer
from .quantized import QuantizedWeight
from .registry import register

_NONLINEARITY = {caffe_pb2.QNNActivationParameter.HARDTANH: "hardtanh",
                 caffe_pb2.QNNActivationParameter.RELU: "relu"}


@register("QNNActivation")
class QNNActivation(ActivationQuantizerLayer):
    """y = q(x) with QNN's n-bit hardtanh / relu; see the module docstring."""

    def layer_setup(self, bottom, top):
        qp = self.param.qnn_activation_param
        try:
            self.quantizer = _ActivationQuantizer(qp.nb, _NONLINEARITY[qp.nonlinearity])
        except ValueError as exc:
            raise self.error("qnn_activation_param: %s" % exc) from None


class _QNNWeight(QuantizedWeight):

    def _make_quantizer(self):
        wp = self.param.qnn_weight_param
        try:
            return QNNWeights(wp.nb, wp.symmetric)
        except ValueError as exc:
            raise self.error("qnn_weight_param: %s" % exc) from None


@register("QNNConvolution")
class QNNConvolution(_QNNWeight, Convolution):
    """Convolution with n-bit weights Q; see the module docstring."""


@register("QNNInnerProduct")
class QNNInnerProduct(_QNNWeight, InnerProduct):
    """InnerProduct with n-bit weights Q; see the module docstring."""
