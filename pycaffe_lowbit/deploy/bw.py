"""The HWGQ-style deploy pair: every quantized layer becomes a plain one.

For each BinaryConvolution / TernaryConvolution / BinaryInnerProduct /
TernaryInnerProduct layer of a Net, the deploy net has a Convolution /
InnerProduct layer of the same name, geometry and bias, whose weight blob is
the layer's own effective weight Q = q(W): alpha_n sign(W_n) (binary),
alpha_n t_n (ternary), W (``use_binarization: false``). Q comes from the
layer's ``weight_quantizer`` (``pycaffe_lowbit.quant``), so alpha is the
fork's float32 value bit for bit; an SQ stochastic selection is dropped (every
row quantized: the last SQ stage trains at ratio 100). The HWGQ and SQ fields
(binary_*_param, sq, ratio) are removed; Quant, BatchNorm and every other
layer stay as they are, BatchNorm with ``use_global_stats: true`` written out
(as the fork's deploy files do). Official Caffe runs the result.
"""
from ..proto import caffe_pb2

PLAIN_TYPE = {"BinaryConvolution": "Convolution", "TernaryConvolution": "Convolution",
              "BinaryInnerProduct": "InnerProduct", "TernaryInnerProduct": "InnerProduct"}


def effective_weight(layer):
    """(Q, quantized): the weight layer ``layer`` computes with, as a NumPy
    array of the blob's shape, and whether it is quantized (packable)."""
    from ..core import backend
    w = layer.blobs[0].data
    q = getattr(layer, "weight_quantizer", None)
    q = getattr(q, "inner", q)  # StochasticSelection: every row quantized
    if q is None:
        return backend.to_numpy(w).copy(), False
    rows = w.reshape(w.shape[0], -1)
    return backend.to_numpy(q.forward(rows)).reshape(w.shape), True


def to_bw(net):
    """(NetParameter with blobs, [names of the quantized layers]) of the plain
    deploy net of ``net`` (a Net, weights loaded)."""
    from ..formats.blobproto import array_to_proto
    param = net.to_proto()
    quantized = []
    for layer, lp in zip(net.layers, param.layer):
        if lp.type == "BatchNorm":
            lp.batch_norm_param.use_global_stats = True
        plain = PLAIN_TYPE.get(lp.type)
        if plain is None:
            continue
        q, is_quantized = effective_weight(layer)
        if is_quantized:
            quantized.append(lp.name)
        lp.type = plain
        for field in ("binary_convolution_param", "binary_inner_product_param"):
            lp.ClearField(field)
        for sub in (lp.convolution_param, lp.inner_product_param):
            sub.ClearField("sq")
            sub.ClearField("ratio")
        if plain == "InnerProduct":
            lp.inner_product_param.ClearField("transpose")  # the forks ignore it
        del lp.blobs[0]
        blob = caffe_pb2.BlobProto()
        array_to_proto(q, proto=blob)
        lp.blobs.insert(0, blob)
    return param, quantized
