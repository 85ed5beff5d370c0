"""The ONNX graph writer of ``onnx_export`` (needs the ``onnx`` package:
``pip install 'pycaffe_lowbit[onnx]'``).

The net is taken in deploy form (``pipeline.deploy_form``) and, where it has
Binary*/Ternary* layers, in its plain ``bw`` form: quantized weights are
exported as constant initializers (alpha * sign(W), alpha * t). Blob shapes
come from building the net (TEST phase), so the batch size is the one the
prototxt declares. Layer mapping (opset >= 16):

    Input -> graph input          Convolution -> Conv       InnerProduct -> Flatten + Gemm
    Pooling MAX / AVE -> MaxPool / AveragePool (end pads chosen so the output
        size is Caffe's ceil rule; AVE only where Caffe's divisor agrees)
    ReLU -> Relu / LeakyRelu      Sigmoid, TanH, Softmax, LRN, Concat, Flatten
    BatchNorm -> BatchNormalization   Scale / Bias -> Mul / Add
    Eltwise -> Sum / Mul / Max    Reshape -> Reshape (to the built shape)
    Dropout, Split -> Identity    Quant -> Where / comparisons (hwgq, sign),
        Clip (hard_tanh), LeakyRelu (relu)

Any other layer type raises an error naming the layer.
"""
import numpy as np
from ..core import backend


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ImportError("ONNX export needs the onnx package: pip install "
                          "'pycaffe_lowbit[onnx]' (or pip install onnx)") from exc
    return onnx, helper, numpy_helper


class _Graph:
    def __init__(self, helper, numpy_helper):
        self.h, self.nh = helper, numpy_helper
        self.nodes, self.inits = [], []
        self.count = 0

    def const(self, name, array):
        self.inits.append(self.nh.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(self.h.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def tmp(self, layer, what):
        self.count += 1
        return "%s__%s_%d" % (layer, what, self.count)


class _Exporter:
    def __init__(self, net, graph):
        self.net, self.g = net, graph
        self.names = {}  # caffe blob name -> current ONNX value name

    def blob(self, name):
        return self.names.get(name, name)

    def out(self, lp, i=0):
        """A fresh ONNX name for top i (in-place tops get a new version)."""
        top = lp.top[i]
        value = top if top not in self.names and top not in lp.bottom else "%s__%s" % (
            top, lp.name)
        self.names[top] = value
        return value

    def params(self, lp):
        """The layer's param values on the host (a GPU-mode net holds them on the device)."""
        return [backend.to_numpy(b.data) for b in self.net.layer_by_name(lp.name).blobs]

    def shape(self, blob):
        return self.net.blob_by_name(blob).shape

    def weight(self, lp, w):
        """The ONNX value of layer ``lp``'s weight ``w`` (a constant here; the
        quantized exports put their quantizer nodes in between)."""
        return self.g.const(lp.name + "_W", w)

    # -- layers -------------------------------------------------------------
    def Convolution(self, lp):
        layer = self.net.layer_by_name(lp.name)
        p = self.params(lp)
        ins = [self.blob(lp.bottom[0]), self.weight(lp, p[0])]
        if len(p) > 1:
            ins.append(self.g.const(lp.name + "_b", p[1]))
        self.g.node("Conv", ins, [self.out(lp)], lp.name, kernel_shape=list(layer.kernel),
                    strides=list(layer.stride), pads=list(layer.pad) * 2,
                    dilations=list(layer.dilation), group=layer.group)

    def InnerProduct(self, lp):
        p = self.params(lp)
        ip = lp.inner_product_param
        flat = self.g.node("Flatten", [self.blob(lp.bottom[0])], [self.g.tmp(lp.name, "flat")],
                           lp.name + "_flatten", axis=self.net.blob_by_name(
                               lp.bottom[0]).canonical_axis(ip.axis))
        ins = [flat, self.weight(lp, p[0])]
        if len(p) > 1:
            ins.append(self.g.const(lp.name + "_b", p[1]))
        transpose = ip.transpose and getattr(self.net.layer_by_name(lp.name),
                                             "honours_transpose", True)
        self.g.node("Gemm", ins, [self.out(lp)], lp.name, transB=0 if transpose else 1)

    def Pooling(self, lp):
        pp = lp.pooling_param
        x = self.blob(lp.bottom[0])
        op = {pp.MAX: "MaxPool", pp.AVE: "AveragePool"}.get(pp.pool)
        if op is None:
            raise ValueError("layer '%s': STOCHASTIC pooling has no ONNX form" % lp.name)
        if pp.global_pooling:
            self.g.node("Global" + op, [x], [self.out(lp)], lp.name)
            return
        layer = self.net.layer_by_name(lp.name)
        k, s, pad = (list(v) for v in (layer.kernel, layer.stride, layer.pad))
        size_in = self.shape(lp.bottom[0])[2:]
        size_out = self.shape(lp.top[0])[2:]
        end = [(o - 1) * st + kk - i - p for o, st, kk, i, p in zip(size_out, s, k, size_in, pad)]
        end = [max(e, 0) for e in end]
        attrs = dict(kernel_shape=k, strides=s, pads=pad + end)
        if op == "AveragePool":
            if end == pad:
                attrs["count_include_pad"] = 1
            elif not any(pad):
                attrs["count_include_pad"] = 0
            else:
                raise ValueError("layer '%s': AVE pooling with padding and a ceil-mode "
                                 "overhang has no exact ONNX form" % lp.name)
        self.g.node(op, [x], [self.out(lp)], lp.name, **attrs)

    def ReLU(self, lp):
        slope = lp.relu_param.negative_slope
        x = self.blob(lp.bottom[0])
        if slope:
            self.g.node("LeakyRelu", [x], [self.out(lp)], lp.name, alpha=slope)
        else:
            self.g.node("Relu", [x], [self.out(lp)], lp.name)

    def _simple(self, op, lp, **attrs):
        self.g.node(op, [self.blob(b) for b in lp.bottom], [self.out(lp)], lp.name, **attrs)

    def Sigmoid(self, lp):
        self._simple("Sigmoid", lp)

    def TanH(self, lp):
        self._simple("Tanh", lp)

    def Softmax(self, lp):
        axis = self.net.blob_by_name(lp.bottom[0]).canonical_axis(lp.softmax_param.axis)
        self._simple("Softmax", lp, axis=axis)

    def Dropout(self, lp):
        self._simple("Identity", lp)

    def Split(self, lp):
        for i in range(len(lp.top)):
            self.g.node("Identity", [self.blob(lp.bottom[0])], [self.out(lp, i)],
                        "%s_%d" % (lp.name, i))

    def Concat(self, lp):
        cp = lp.concat_param
        axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
        self._simple("Concat", lp, axis=self.net.blob_by_name(lp.bottom[0]).canonical_axis(axis))

    def Flatten(self, lp):
        shape = self.shape(lp.top[0])
        self._reshape(lp, shape)

    def Reshape(self, lp):
        self._reshape(lp, self.shape(lp.top[0]))

    def _reshape(self, lp, shape):
        target = self.g.const(lp.name + "_shape", np.array(shape, np.int64))
        self.g.node("Reshape", [self.blob(lp.bottom[0]), target], [self.out(lp)], lp.name)

    def LRN(self, lp):
        p = lp.lrn_param
        if p.norm_region != p.ACROSS_CHANNELS:
            raise ValueError("layer '%s': WITHIN_CHANNEL LRN has no ONNX form" % lp.name)
        self._simple("LRN", lp, size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)

    def BatchNorm(self, lp):
        mean, var, s = self.params(lp)
        f = 0.0 if float(s.reshape(-1)[0]) == 0 else 1.0 / float(s.reshape(-1)[0])
        c = mean.size
        ins = [self.blob(lp.bottom[0]),
               self.g.const(lp.name + "_scale", np.ones(c, np.float32)),
               self.g.const(lp.name + "_bias", np.zeros(c, np.float32)),
               self.g.const(lp.name + "_mean", (mean * np.float32(f)).astype(np.float32)),
               self.g.const(lp.name + "_var", (var * np.float32(f)).astype(np.float32))]
        self.g.node("BatchNormalization", ins, [self.out(lp)], lp.name,
                    epsilon=lp.batch_norm_param.eps)

    def _channel_const(self, lp, name, values):
        ndim = len(self.shape(lp.bottom[0]))
        return self.g.const(lp.name + name, values.reshape((-1,) + (1,) * (ndim - 2)))

    def Scale(self, lp):
        p = self.params(lp)
        if len(lp.bottom) != 1 or lp.scale_param.axis != 1:
            raise ValueError("layer '%s': only a one-bottom Scale on axis 1 exports" % lp.name)
        x = self.blob(lp.bottom[0])
        y = self.out(lp)
        mid = self.g.tmp(lp.name, "mul") if len(p) > 1 else y
        self.g.node("Mul", [x, self._channel_const(lp, "_gamma", p[0])], [mid], lp.name)
        if len(p) > 1:
            self.g.node("Add", [mid, self._channel_const(lp, "_beta", p[1])], [y],
                        lp.name + "_bias")

    def Bias(self, lp):
        p = self.params(lp)
        self.g.node("Add", [self.blob(lp.bottom[0]), self._channel_const(lp, "_b", p[0])],
                    [self.out(lp)], lp.name)

    def Eltwise(self, lp):
        ep = lp.eltwise_param
        ins = [self.blob(b) for b in lp.bottom]
        if ep.operation == ep.SUM and len(ep.coeff) and any(c != 1 for c in ep.coeff):
            ins = [self.g.node("Mul", [x, self.g.const(self.g.tmp(lp.name, "c"),
                                                         np.array(c, np.float32))],
                               [self.g.tmp(lp.name, "scaled")], "%s_coeff%d" % (lp.name, i))
                   for i, (x, c) in enumerate(zip(ins, ep.coeff))]
        op = {ep.SUM: "Sum", ep.PROD: "Mul" if len(ins) == 2 else None, ep.MAX: "Max"}[
            ep.operation]
        if op is None:
            raise ValueError("layer '%s': PROD of more than two bottoms" % lp.name)
        self.g.node(op, ins, [self.out(lp)], lp.name)

    def Quant(self, lp):
        q = lp.quant_param
        x = self.blob(lp.bottom[0])
        f32 = np.float32
        if q.forward_func == "relu":
            self.g.node("LeakyRelu", [x], [self.out(lp)], lp.name, alpha=q.negative_slope)
            return
        if q.forward_func == "hard_tanh":
            self.g.node("Clip", [x, self.g.const(lp.name + "_lo", np.array(-1, f32)),
                                 self.g.const(lp.name + "_hi", np.array(1, f32))],
                        [self.out(lp)], lp.name)
            return
        if q.forward_func == "sign":
            cond = self.g.node("GreaterOrEqual", [x, self.g.const(lp.name + "_0", np.array(0, f32))],
                               [self.g.tmp(lp.name, "ge")], lp.name + "_ge")
            self.g.node("Where", [cond, self.g.const(lp.name + "_p", np.array(1, f32)),
                                  self.g.const(lp.name + "_m", np.array(-1, f32))],
                        [self.out(lp)], lp.name)
            return
        # built negated and flipped by a final Neg: onnxruntime's Where drops the
        # sign of a -0.0 constant, and the fork's hwgq gives -0.0 for x <= 0
        centers = np.array(q.centers, f32)
        thresholds = (centers[:-1] + centers[1:]) / f32(2)
        value = self.g.const(lp.name + "_c%d" % (len(centers) - 1), -centers[-1])
        for i in range(len(thresholds) - 1, -1, -1):
            cond = self.g.node("LessOrEqual", [x, self.g.const(lp.name + "_t%d" % i,
                                                                 thresholds[i])],
                               [self.g.tmp(lp.name, "le")], "%s_le%d" % (lp.name, i))
            value = self.g.node("Where", [cond, self.g.const(lp.name + "_c%d" % i, -centers[i]),
                                          value], [self.g.tmp(lp.name, "lvl")],
                                "%s_lvl%d" % (lp.name, i))
        cond = self.g.node("LessOrEqual", [x, self.g.const(lp.name + "_zero", np.array(0, f32))],
                           [self.g.tmp(lp.name, "neg")], lp.name + "_neg")
        low = self.g.const(lp.name + "_low", np.array(q.negative_slope, f32))
        value = self.g.node("Where", [cond, low, value], [self.g.tmp(lp.name, "nq")],
                            lp.name + "_low")
        self.g.node("Neg", [value], [self.out(lp)], lp.name)


def net_to_onnx(net, opset=17, name=None, exporter=None, domains=()):
    """The ONNX ModelProto of ``net`` (a Net with its weights, no quantized
    layer types: pass it through ``bw.to_bw`` first). ``exporter(net, graph)``
    makes the layer writer (the float one by default; ``onnx_quant`` has the
    quantized ones), ``domains`` the extra (domain, version) operator sets."""
    onnx, helper, numpy_helper = _onnx()
    graph = _Graph(helper, numpy_helper)
    ex = (exporter or _Exporter)(net, graph)
    inputs = []
    for lp in net._param.layer:
        if lp.type == "Input":
            for top in lp.top:
                inputs.append(helper.make_tensor_value_info(
                    top, onnx.TensorProto.FLOAT, list(net.blob_by_name(top).shape)))
            continue
        fn = getattr(ex, lp.type, None) if lp.type[:1].isupper() else None
        if fn is None:
            raise ValueError("layer '%s' of type %s has no ONNX export" % (lp.name, lp.type))
        fn(lp)
    # an output: a blob no layer reads after its last writer (an in-place last
    # layer, such as a classifier's BatchNorm, still leaves one)
    last_write, last_read = {}, {}
    for i, lp in enumerate(net._param.layer):
        for b in lp.bottom:
            last_read[b] = i
        for b in lp.top:
            if lp.type != "Input":
                last_write[b] = i
    outputs = [helper.make_tensor_value_info(ex.blob(b), onnx.TensorProto.FLOAT,
                                             list(net.blob_by_name(b).shape))
               for b, i in last_write.items() if last_read.get(b, -1) <= i]
    outputs = list({o.name: o for o in outputs}.values())
    g = helper.make_graph(graph.nodes, name or net.name or "caffe", inputs, outputs,
                          initializer=graph.inits)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains]
    model = helper.make_model(g, opset_imports=opsets, producer_name="pycaffe_lowbit")
    onnx.checker.check_model(model)
    return model
