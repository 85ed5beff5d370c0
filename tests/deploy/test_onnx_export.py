"""ONNX export checked with onnxruntime against our own forward."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.pycaffe import pycaffe
from pycaffe_lowbit.core.net import TEST
from support import paths

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
ort = pytest.importorskip("onnxruntime", reason="the check needs onnxruntime")
from pycaffe_lowbit.deploy import onnx_export  # noqa: E402

ROOT = paths.ROOT
STANDARD = """
name: "standard"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 13 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 stride: 2
                            weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "gaussian" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" relu_param { negative_slope: 0.1 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool1a" type: "Pooling" bottom: "conv1" top: "pool1a"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "g" type: "Convolution" bottom: "pool1" top: "g"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 2
                            weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "sum" type: "Eltwise" bottom: "g" bottom: "pool1" top: "sum"
        eltwise_param { coeff: 1 coeff: -0.5 } }
layer { name: "norm" type: "LRN" bottom: "sum" top: "norm" lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layer { name: "cat" type: "Concat" bottom: "norm" bottom: "pool1a" top: "cat" }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" }
layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
layer { name: "ip1" type: "InnerProduct" bottom: "flat" top: "ip1"
        inner_product_param { num_output: 12 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "tanh" type: "TanH" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


def _save_net(tmp_path, text):
    model = tmp_path / "net.prototxt"
    model.write_text(text)
    net = pycaffe.Net(str(model), TEST)
    rng = np.random.default_rng(0)
    for layer in net.layers:
        if layer.type == "BatchNorm":
            layer.blobs[0].data[...] = rng.standard_normal(layer.blobs[0].count)
            layer.blobs[1].data[...] = rng.uniform(0.5, 2, layer.blobs[1].count)
            layer.blobs[2].data[...] = 1
        if layer.type == "Scale":
            layer.blobs[0].data[...] = rng.uniform(0.5, 2, layer.blobs[0].count)
    weights = tmp_path / "net.caffemodel"
    net.save(str(weights))
    return str(model), str(weights)


def _check(model, weights, tmp_path, rtol=1e-5):
    out = str(tmp_path / "net.onnx")
    names = onnx_export.export_onnx(model, weights, out)
    net = pycaffe.Net(model, TEST, weights=weights)
    shape = net.blobs["data"].data.shape
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours = net.forward(data=x)
    got = ort.InferenceSession(out).run(names, {"data": x})
    for name, value in zip(names, got):
        np.testing.assert_allclose(value, ours[name.split("__")[0]], rtol=rtol, atol=1e-5)
    return names


def test_standard_layers_match_onnxruntime(tmp_path):
    assert _check(*_save_net(tmp_path, STANDARD), tmp_path) == ["prob"]


def test_lenet_caffemodel_matches_onnxruntime(tmp_path):
    _check(os.path.join(ROOT, "models", "lenet", "lenet_deploy.prototxt"),
           os.path.join(paths.GOLDEN, "nets", "lenet.caffemodel"), tmp_path)


def test_unsupported_layer_is_named(tmp_path):
    text = STANDARD.replace('type: "TanH"', 'type: "BNLL"')
    model, weights = _save_net(tmp_path, text)
    with pytest.raises(ValueError, match="layer 'tanh' of type BNLL has no ONNX export"):
        onnx_export.export_onnx(model, weights, str(tmp_path / "x.onnx"))


def test_hwgq_deploy_net_exports_with_quantized_constants(tmp_path):
    from pycaffe_lowbit.layers.registry import layer_type_list
    if not {"Quant", "BinaryConvolution"} <= set(layer_type_list()):
        pytest.skip("needs the low-bit layers (Binary*/Quant)")
    golden = os.path.join(paths.GOLDEN, "hwgq", "deploy")
    d = np.load(os.path.join(golden, "deploy_lenet_bw.npz"))
    model = tmp_path / "deploy.prototxt"
    model.write_text(str(d["prototxt"]))
    weights = os.path.join(golden, "deploy_lenet_bw.caffemodel")
    out = str(tmp_path / "lenet.onnx")
    assert onnx_export.export_onnx(str(model), weights, out) == ["prob"]
    graph = onnx.load(out).graph
    assert {n.op_type for n in graph.node} >= {"Conv", "Gemm", "Where", "BatchNormalization"}
    w = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    ip1 = w["ip1_W"]
    assert np.all(np.abs(ip1) == np.abs(ip1).max(axis=1, keepdims=True))  # alpha_n * sign
    net = pycaffe.Net(str(model), TEST, weights=weights)
    x = d["in__data"]
    ours = net.forward(data=x)["prob"]
    got = ort.InferenceSession(out).run(["prob"], {"data": x})[0]
    np.testing.assert_allclose(got, ours, atol=0.02)  # a Quant level may flip (see test_deploy)
    assert (got.argmax(1) == ours.argmax(1)).all()


@pytest.mark.parametrize("quant", [
    'forward_func: "hwgq" centers: 0.538 centers: 1.076 centers: 1.614',
    'forward_func: "hwgq" centers: 0.453 centers: 1.51 negative_slope: 0.1',
    'forward_func: "sign"', 'forward_func: "hard_tanh"',
    'forward_func: "relu" negative_slope: 0.2'])
def test_quant_exports_exactly_with_ties(tmp_path, quant):
    from pycaffe_lowbit.layers.registry import layer_type_list
    if "Quant" not in layer_type_list():
        pytest.skip("needs the Quant layer")
    c = np.float32([0.538, 1.076, 1.614, 0.453, 1.51])
    ties = np.concatenate([c, (c[:-1] + c[1:]) / np.float32(2), [0, -0.0, 1, -1, 2, -2]])
    x = np.concatenate([ties, np.linspace(-2, 2, 64 - len(ties))]).astype(np.float32)
    text = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 64 } } }'
            'layer { name: "q" type: "Quant" bottom: "data" top: "q" quant_param { %s } }' % quant)
    model, weights = _save_net(tmp_path, text)
    names = onnx_export.export_onnx(model, weights, str(tmp_path / "q.onnx"))
    got = ort.InferenceSession(str(tmp_path / "q.onnx")).run(names, {"data": x[None]})[0]
    ours = pycaffe.Net(model, TEST).forward(data=x[None])["q"]
    np.testing.assert_array_equal(got, ours)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ours))
