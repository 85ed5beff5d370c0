"""Quantized ONNX: every quantizer of a low-bit net written as a quantizer node,
not evaluated into float constants (``export_onnx(..., quant=...)``, ``lowbit-caffe
convert W.caffemodel OUT.onnx --model DEPLOY --quant qonnx|qdq|integer``).

The integer form of each quantizer comes from ``onnx_levels`` (which also says
which quantizers have none); every other layer is written as in the float
export (``onnx_graph``). Three formats:

``qonnx``  QONNX's operators (domain ``qonnx.custom_op.general``, what FINN and
    the qonnx tools read): a weight feeds ``BipolarQuant(W, scale)`` (binary,
    per-output-channel alpha as scale) or ``Quant(Q, scale, 0, bits)`` with
    ``signed`` / ``narrow`` (ternary: 2 bits narrow; QNN: nb bits; weight search:
    its grid); an activation quantizer is ``BipolarQuant(x, 1)`` (sign) or
    ``Quant(z, s, zero_point, bits)`` unsigned with its rounding mode, z the
    clipped (HWGQ: pre-mapped, see ``onnx_levels``) input.
``qdq``  standard ONNX (opset >= 13): weights as int8 initializers through
    ``DequantizeLinear`` with per-output-channel scales (axis 0); activations
    as a ``QuantizeLinear`` / ``DequantizeLinear`` pair, uint8 (int8 where
    levels are below 0), after the same clip / pre-map. What TensorRT and
    other QDQ readers take. QuantizeLinear rounds half to even: an input exactly
    halfway between two levels may round the other way than the layer does.
``integer``  the ``qdq`` graph where each quantized Conv / InnerProduct whose
    input is a quantized activation reads the 8-bit tensors themselves:
    ``ConvInteger`` / ``MatMulInteger`` (int32 sums), then ``Cast`` and one
    multiply by s_x * scale_n (and the bias). onnxruntime fuses a QDQ Conv into
    QLinearConv only when a QuantizeLinear follows the Conv directly, and a
    low-bit net's next quantizer comes after BatchNorm (HWGQ's, after its
    pre-map too), so this is the form that runs its integer kernels.

A quantizer with no exact integer form (non-uniform HWGQ levels, a weight
value set on no small power-of-two grid, levels outside an 8-bit container)
raises ``onnx_levels.ExportError`` naming the layer.
"""
import numpy as np

from .onnx_graph import _Exporter, net_to_onnx
from .onnx_levels import ExportError, activation_code, weight_code

QONNX_DOMAIN = "qonnx.custom_op.general"
F32 = np.float32


class _QuantExporter(_Exporter):
    """The float exporter plus the quantized layer types; a subclass writes
    ``quant_weight(lp, code, ndim)`` and ``quant_activation(lp, x, code)``."""

    max_weight_bits = 8

    def weight(self, lp, w):
        layer = self.net.layer_by_name(lp.name)
        code = weight_code(layer, self.max_weight_bits)
        if code is None:
            return super().weight(lp, w)
        return self.quant_weight(lp, code)

    def BinaryConvolution(self, lp):
        self.Convolution(lp)

    TernaryConvolution = QNNConvolution = WeightSearchConvolution = BinaryConvolution

    def BinaryInnerProduct(self, lp):
        self.InnerProduct(lp)

    TernaryInnerProduct = QNNInnerProduct = WeightSearchInnerProduct = BinaryInnerProduct

    def Quant(self, lp):
        code = activation_code(self.net.layer_by_name(lp.name))
        if code is None:
            super().Quant(lp)          # hard_tanh, leaky relu: float ops
            return
        self.quant_activation(lp, self.blob(lp.bottom[0]), code)

    QNNActivation = Quant

    def scale_const(self, lp, name, scale, ndim):
        """A per-output-channel scale shaped to broadcast over a weight of
        ``ndim`` dims, or a scalar when every channel has the same."""
        scale = np.asarray(scale, F32)
        if np.all(scale == scale[0]):
            return self.g.const(lp.name + name, np.array(scale[0], F32))
        return self.g.const(lp.name + name, scale.reshape((-1,) + (1,) * (ndim - 1)))

    def pre_map(self, lp, x, code):
        """The input of an activation's integer quantizer: x clipped, or HWGQ's
        z = x > 0 ? clip(x, c_1, c_K) : low (see ``onnx_levels``)."""
        c = self.g.const
        if code.hwgq is not None:
            c1, ck, low = code.hwgq
            pos = self.g.node("Greater", [x, c(lp.name + "_zero", np.array(0, F32))],
                              [self.g.tmp(lp.name, "pos")], lp.name + "_pos")
            clipped = self.g.node("Clip", [x, c(lp.name + "_c1", np.array(c1, F32)),
                                           c(lp.name + "_cK", np.array(ck, F32))],
                                  [self.g.tmp(lp.name, "clip")], lp.name + "_clip")
            return self.g.node("Where", [pos, clipped, c(lp.name + "_low", np.array(low, F32))],
                               [self.g.tmp(lp.name, "z")], lp.name + "_premap")
        if code.clip is not None:
            lo, hi = code.clip
            return self.g.node("Clip", [x, c(lp.name + "_lo", np.array(lo, F32)),
                                        c(lp.name + "_hi", np.array(hi, F32))],
                               [self.g.tmp(lp.name, "clip")], lp.name + "_clip")
        return x


class QONNXExporter(_QuantExporter):
    """QONNX's Quant / BipolarQuant (see the module docstring)."""

    max_weight_bits = 8

    def _qnode(self, op, inputs, out, name, **attrs):
        return self.g.node(op, inputs, [out], name, domain=QONNX_DOMAIN, **attrs)

    def quant_weight(self, lp, code):
        ndim = code.ints.ndim
        src = self.g.const(lp.name + "_W", code.source)
        scale = self.scale_const(lp, "_W_scale", code.scale, ndim)
        out = self.g.tmp(lp.name, "Wq")
        if code.bipolar:
            return self._qnode("BipolarQuant", [src, scale], out, lp.name + "_wquant")
        zero = self.g.const(lp.name + "_W_zeropt", np.array(0, F32))
        bits = self.g.const(lp.name + "_W_bits", np.array(code.bits, F32))
        return self._qnode("Quant", [src, scale, zero, bits], out, lp.name + "_wquant",
                           signed=int(code.signed), narrow=int(code.narrow),
                           rounding_mode="ROUND")

    def quant_activation(self, lp, x, code):
        c = self.g.const
        if code.bipolar:
            self._qnode("BipolarQuant", [x, c(lp.name + "_scale", np.array(1, F32))],
                        self.out(lp), lp.name)
            return
        z = self.pre_map(lp, x, code)
        narrow = code.count == 2 ** code.bits - 1
        self._qnode("Quant", [z, c(lp.name + "_scale", np.array(code.scale, F32)),
                              c(lp.name + "_zeropt", np.array(code.zero_point, F32)),
                              c(lp.name + "_bits", np.array(code.bits, F32))],
                    self.out(lp), lp.name, signed=0, narrow=int(narrow),
                    rounding_mode=code.rounding)


def _container(lp, code):
    """(numpy dtype, zero point in it) holding the levels k - zero_point."""
    lo, hi = -code.zero_point, code.count - 1 - code.zero_point
    if code.zero_point > 0 and -128 <= lo and hi <= 127:
        return np.int8, 0
    if code.count <= 256:
        return np.uint8, code.zero_point
    raise ExportError("layer '%s': %d activation levels do not fit an 8-bit container"
                      % (lp.name, code.count))


class QDQExporter(_QuantExporter):
    """QuantizeLinear / DequantizeLinear pairs (see the module docstring)."""

    def __init__(self, net, graph):
        super().__init__(net, graph)
        self.int8_of = {}    # DQ output value -> (Q output, scale, zero point, s_x)

    def int8_weight(self, lp, code):
        lo, hi = code.int_range() if code.bipolar else (code.ints.min(), code.ints.max())
        if lo < -128 or hi > 127:
            raise ExportError("layer '%s': its weights are integers in [%d, %d], which an int8 "
                              "container cannot hold" % (lp.name, lo, hi))
        return code.ints.astype(np.int8)

    def quant_weight(self, lp, code):
        ints = self.g.const(lp.name + "_W_int8", self.int8_weight(lp, code))
        num = code.ints.shape[0]
        scale = self.g.const(lp.name + "_W_scale", np.broadcast_to(code.scale, (num,)).astype(F32))
        zero = self.g.const(lp.name + "_W_zero", np.zeros(num, np.int8))
        return self.g.node("DequantizeLinear", [ints, scale, zero], [self.g.tmp(lp.name, "Wdq")],
                           lp.name + "_wdq", axis=0)

    def quant_activation(self, lp, x, code):
        c = self.g.const
        if code.bipolar:
            ge = self.g.node("GreaterOrEqual", [x, c(lp.name + "_zero", np.array(0, F32))],
                             [self.g.tmp(lp.name, "ge")], lp.name + "_ge")
            z = self.g.node("Where", [ge, c(lp.name + "_p1", np.array(1, F32)),
                                      c(lp.name + "_m1", np.array(-1, F32))],
                            [self.g.tmp(lp.name, "sign")], lp.name + "_sign")
            dtype, zp = np.int8, 0
        else:
            z = self.pre_map(lp, x, code)
            dtype, zp = _container(lp, code)
        scale = c(lp.name + "_scale", np.array(code.scale, F32))
        zero = c(lp.name + "_zeropt", np.array(zp, dtype))
        q = self.g.node("QuantizeLinear", [z, scale, zero], [self.g.tmp(lp.name, "q")],
                        lp.name + "_q")
        out = self.g.node("DequantizeLinear", [q, scale, zero], [self.out(lp)], lp.name)
        self.int8_of[out] = (q, zero, code.scale)


class IntegerExporter(QDQExporter):
    """``qdq`` with ConvInteger / MatMulInteger (see the module docstring)."""

    def _integer_inputs(self, lp):
        """(x_q, x_zero, s_x, WeightCode) when lp can run on integers, else None."""
        held = self.int8_of.get(self.blob(lp.bottom[0]))
        if held is None:
            return None
        code = weight_code(self.net.layer_by_name(lp.name), self.max_weight_bits)
        if code is None:
            return None
        return held + (code,)

    def _rescale(self, lp, acc, s_x, code, ndim, bias):
        f = self.g.node("Cast", [acc], [self.g.tmp(lp.name, "accf")], lp.name + "_cast", to=1)
        shape = (1, -1) + (1,) * (ndim - 2)
        scale = (np.broadcast_to(code.scale, (code.ints.shape[0],)) * F32(s_x)).astype(F32)
        out = self.out(lp)
        y = self.g.node("Mul", [f, self.g.const(lp.name + "_rescale", scale.reshape(shape))],
                        [out if bias is None else self.g.tmp(lp.name, "scaled")],
                        lp.name + "_mul")
        if bias is not None:
            self.g.node("Add", [y, self.g.const(lp.name + "_b", bias.reshape(shape))], [out],
                        lp.name + "_bias")

    def Pooling(self, lp):
        """MAX pooling of a quantized activation pools the 8-bit tensor (the
        dequantization is increasing, so it commutes) and keeps it for the
        next integer layer."""
        held = self.int8_of.get(self.blob(lp.bottom[0]))
        pp = lp.pooling_param
        if held is None or pp.pool != pp.MAX:
            super().Pooling(lp)
            return
        xq, zero, s_x = held
        names = dict(self.names)
        self.names[lp.bottom[0]] = xq
        super().Pooling(lp)
        pooled = self.names[lp.top[0]]
        self.names = dict(names, **{lp.top[0]: pooled})
        renamed = self.g.tmp(lp.name, "q")
        self.g.nodes[-1].output[0] = renamed
        scale = self.g.const(lp.name + "_scale", np.array(s_x, F32))
        out = self.g.node("DequantizeLinear", [renamed, scale, zero], [pooled], lp.name + "_dq")
        self.int8_of[out] = (renamed, zero, s_x)

    def Convolution(self, lp):
        found = self._integer_inputs(lp)
        if found is None:
            super().Convolution(lp)
            return
        xq, xzero, s_x, code = found
        layer = self.net.layer_by_name(lp.name)
        p = self.params(lp)
        w = self.g.const(lp.name + "_W_int8", self.int8_weight(lp, code))
        wzero = self.g.const(lp.name + "_W_zero", np.array(0, np.int8))
        acc = self.g.node("ConvInteger", [xq, w, xzero, wzero], [self.g.tmp(lp.name, "acc")],
                          lp.name, kernel_shape=list(layer.kernel), strides=list(layer.stride),
                          pads=list(layer.pad) * 2, dilations=list(layer.dilation),
                          group=layer.group)
        self._rescale(lp, acc, s_x, code, len(self.shape(lp.top[0])),
                      p[1] if len(p) > 1 else None)

    def InnerProduct(self, lp):
        found = self._integer_inputs(lp)
        if found is None:
            super().InnerProduct(lp)
            return
        xq, xzero, s_x, code = found
        p = self.params(lp)
        axis = self.net.blob_by_name(lp.bottom[0]).canonical_axis(lp.inner_product_param.axis)
        flat = self.g.node("Flatten", [xq], [self.g.tmp(lp.name, "flat")], lp.name + "_flatten",
                           axis=axis)
        w = self.g.const(lp.name + "_W_int8",
                         np.ascontiguousarray(self.int8_weight(lp, code).reshape(
                             code.ints.shape[0], -1).T))
        wzero = self.g.const(lp.name + "_W_zero", np.array(0, np.int8))
        acc = self.g.node("MatMulInteger", [flat, w, xzero, wzero], [self.g.tmp(lp.name, "acc")],
                          lp.name)
        self._rescale(lp, acc, s_x, code, 2, p[1] if len(p) > 1 else None)


EXPORTERS = {"qonnx": (QONNXExporter, ((QONNX_DOMAIN, 1),)),
             "qdq": (QDQExporter, ()),
             "integer": (IntegerExporter, ())}


def quantized_onnx(net, quant, opset=17):
    """The ONNX ModelProto of ``net`` (a Net with its weights, TEST phase, its
    quantized layers as they are) in format ``quant`` (see the module docstring)."""
    exporter, domains = EXPORTERS[quant]
    if opset < 13:
        raise ValueError("quantized ONNX needs opset >= 13 (per-channel DequantizeLinear)")
    return net_to_onnx(net, opset=opset, exporter=exporter, domains=domains)
