"""net.summary() / deploy.summary against hand counts: LeNet, BVLC AlexNet and
AlexNet-HWGQ (first and last layers full precision, the HWGQ paper's
convention), and the rules for bits, shared params, Deconvolution and memory."""
import os

import numpy as np
import pytest
from google.protobuf import text_format

import pycaffe_lowbit as caffe
from pycaffe_lowbit.deploy import pack, pipeline
from pycaffe_lowbit.deploy.summary import summarize, summarize_file
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

MODELS = os.path.join(paths.ROOT, "models")
BVLC_ALEXNET = os.path.join(paths.SEEDS, "bvlc", "models", "bvlc_alexnet", "deploy.prototxt")


def conv(n, c, k, out, bias=True, group=1):
    """(params, MACs per image) of a k x k convolution, n filters over c channels."""
    weights = n * (c // group) * k * k
    return weights + (n if bias else 0), n * out * out * (c // group) * k * k


def ip(n, k, bias=True):
    return n * k + (n if bias else 0), n * k


def batchnorm(c):
    return 2 * c + 1          # mean, variance, the moving-average factor


def check(summary, expected):
    """``expected``: {layer: (params, macs, weight bits, input bits)}."""
    for name, (params, macs, wbits, ibits) in expected.items():
        row = summary.row(name)
        assert (row.params, row.macs, row.weight_bits, row.input_bits) == \
            (params, macs, wbits, ibits), name


def test_lenet_hand_counts():
    s = summarize_file(os.path.join(MODELS, "lenet", "lenet_deploy.prototxt"))
    expected = {"conv1": conv(20, 1, 5, 24) + (32, 32), "conv2": conv(50, 20, 5, 8) + (32, 32),
                "ip1": ip(500, 800) + (32, 32), "ip2": ip(10, 500) + (32, 32)}
    check(s, expected)
    assert s.params == 431080 and s.macs == 2293000
    assert s.float_macs == s.macs and s.lowbit_macs == 0
    assert s.trained_bytes == s.deployed_bytes == s.float_bytes == 4 * 431080
    assert s.compression == 1.0
    assert s.row("pool1").top_shapes == [(64, 20, 12, 12)]
    assert s.row("data").input_bits is None and s.row("pool1").weight_bits is None


@pytest.mark.skipif(not os.path.exists(BVLC_ALEXNET), reason="needs ../shared/seeds")
def test_bvlc_alexnet_hand_counts():
    s = summarize_file(BVLC_ALEXNET)
    expected = {"conv1": conv(96, 3, 11, 55), "conv2": conv(256, 96, 5, 27, group=2),
                "conv3": conv(384, 256, 3, 13), "conv4": conv(384, 384, 3, 13, group=2),
                "conv5": conv(256, 384, 3, 13, group=2), "fc6": ip(4096, 9216),
                "fc7": ip(4096, 4096), "fc8": ip(1000, 4096)}
    check(s, {k: v + (32, 32) for k, v in expected.items()})
    assert s.params == sum(v[0] for v in expected.values()) == 60965224
    assert s.macs == sum(v[1] for v in expected.values()) == 724406816
    assert s.macs_by_bits == {32: s.macs} and s.compression == 1.0


def test_alexnet_hwgq_hand_counts():
    s = summarize_file(os.path.join(MODELS, "alexnet_hwgq", "deploy.prototxt"))
    binary = {"conv2": conv(256, 96, 5, 27, bias=False), "conv3": conv(384, 256, 3, 13, False),
              "conv4": conv(384, 384, 3, 13, False), "conv5": conv(256, 384, 3, 13, False),
              "fc6": ip(4096, 9216, False), "fc7": ip(4096, 4096, False)}
    full = {"conv1": conv(96, 3, 11, 55, bias=False), "fc8": ip(1000, 4096)}
    # Binary weights read 2-bit HWGQ activations (4 levels: 0 and 3 centers);
    # conv1 reads the image, fc8 a ReLU.
    check(s, {k: v + (1, 2) for k, v in binary.items()})
    check(s, {k: v + (32, 32) for k, v in full.items()})
    bn = {"bn2": 96, "bn3": 256, "bn4": 384, "bn5": 384, "bn6": 256, "bn7": 4096, "bn8": 4096}
    for name, c in bn.items():
        assert s.row(name).params == batchnorm(c) and s.row(name).weight_bits is None
    n_binary = sum(v[0] for v in binary.values())
    n_float = sum(v[0] for v in full.values()) + sum(batchnorm(c) for c in bn.values())
    assert s.params_by_bits == {1: n_binary, 32: n_float}
    assert s.macs_by_bits == {2: sum(v[1] for v in binary.values()),
                              32: sum(v[1] for v in full.values())}
    assert s.lowbit_macs == s.macs_by_bits[2] and s.float_macs == s.macs_by_bits[32]

    # Deployed: one bit per weight in 64-bit words per row, a float32 alpha per row.
    def packed(name, rows, k):
        return rows * -(-k // 64) * 8 + 4 * rows
    rows_k = {"conv2": (256, 2400), "conv3": (384, 2304), "conv4": (384, 3456),
              "conv5": (256, 3456), "fc6": (4096, 9216), "fc7": (4096, 4096)}
    for name, (rows, k) in rows_k.items():
        assert s.row(name).deployed_bytes == packed(name, rows, k)
        assert s.row(name).trained_bytes == 4 * rows * k
    deployed = sum(packed(n, *rk) for n, rk in rows_k.items()) + 4 * n_float
    assert s.deployed_bytes == deployed
    assert s.float_bytes == s.trained_bytes == 4 * (n_binary + n_float)
    assert s.compression == pytest.approx(4 * (n_binary + n_float) / deployed)
    assert 10 < s.compression < 11


NET = """
name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "q0" type: "Quant" bottom: "data" top: "q0" quant_param { forward_func: "sign" } }
layer { name: "conv1" type: "TernaryConvolution" bottom: "q0" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "qa" type: "QNNActivation" bottom: "pool1" top: "qa" qnn_activation_param { nb: 2 } }
layer { name: "qb" type: "QNNActivation" bottom: "pool1" top: "qb" qnn_activation_param { nb: 2 } }
layer { name: "cat" type: "Concat" bottom: "qa" bottom: "qb" top: "cat" }
layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
layer { name: "ip1" type: "QNNInnerProduct" bottom: "flat" top: "ip1"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" } }
        qnn_weight_param { nb: 3 } param { name: "shared" } }
layer { name: "ip2" type: "QNNInnerProduct" bottom: "flat" top: "ip2"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" } }
        qnn_weight_param { nb: 3 } param { name: "shared" } }
layer { name: "ws" type: "WeightSearchInnerProduct" bottom: "ip1" top: "ws"
        inner_product_param { num_output: 3 bias_term: false }
        weight_search_param { value_set: "po2-3b" } }
layer { name: "up" type: "Deconvolution" bottom: "conv1" top: "up"
        convolution_param { num_output: 2 kernel_size: 2 stride: 2 bias_term: false } }
"""


def _tiny():
    return caffe.Net(text_format.Parse(NET, caffe_pb2.NetParameter()), caffe.TEST)


def test_bits_follow_quantizer_levels_and_shared_params_count_once():
    s = _tiny().summary()
    assert (s.row("conv1").weight_bits, s.row("conv1").input_bits) == (2, 1)   # TWN on sign
    assert s.row("conv1").mac_bits == 2
    # QNN hardtanh nb=2 has 5 levels (-1, -.5, 0, .5, 1): 3 bits, through Concat and Flatten.
    assert s.row("ip1").input_bits == 3 and s.row("ip1").weight_bits == 3
    # Concat of two 4 x 4 x 4 maps: k = 128. ip2 shares ip1's weight: its bias only.
    assert s.row("ip1").params == 5 * 128 + 5 and s.row("ip2").params == 5
    assert s.row("ip2").trained_bytes == 4 * 5
    # Weight search: W (3 x 5) counts, stored as 8 logits each while training; 3 bits.
    ws = s.row("ws")
    assert (ws.params, ws.weight_bits, ws.trained_bytes) == (15, 3, 4 * 15 * 8)
    assert ws.deployed_bytes == 3 * 1 * 8 * 3 + 4 * 8      # 3 planes of 1 word, 8 values
    assert ws.input_bits == 32 and ws.macs == 15
    # Deconvolution: every input value meets num_output * k * k weights.
    assert s.row("up").macs == 4 * 8 * 8 * 2 * 2 * 2
    # 3 planes of 5 rows x 2 words, one power-of-two scale, the float bias.
    assert s.row("ip1").deployed_bytes == 3 * 5 * 2 * 8 + 4 + 4 * 5


def test_weights_are_read_for_plain_layers_and_match_the_packed_size(tmp_path):
    """A deploy bw net (plain layers, alpha * sign) counts as the packed model
    does: the summary's deployed bytes equal pack.size_report's."""
    model = os.path.join(MODELS, "lenet_hwgq", "train_val.prototxt")
    form = pipeline.deploy_form(_read(model), (2, 1, 28, 28))
    net = caffe.Net(form, caffe.TEST)
    for name in ("conv1", "conv2", "ip1", "ip2"):
        blob = net.params[name][0]
        blob.data[...] = np.random.default_rng(1).normal(size=blob.shape)
    weights = str(tmp_path / "w.caffemodel")
    net.save(weights)
    train_form = str(tmp_path / "deploy.prototxt")
    with open(train_form, "w") as f:
        f.write(text_format.MessageToString(form))
    _, bw_param, _, packed, quantized = pipeline.build_deploy(train_form, weights, None, False)
    _, (before, after) = pack.size_report(packed)
    bw = caffe.Net(bw_param, caffe.TEST)
    for s in (bw.summary(), summarize_file(train_form, weights)):
        assert s.deployed_bytes == after and s.trained_bytes == before
        assert [r.name for r in s.layers if r.weight_bits == 1] == quantized
    assert bw.summary(infer_from_weights=False).deployed_bytes == before


def _read(path):
    from pycaffe_lowbit.formats.text import read_net_param
    return read_net_param(path)


def test_zero_weights_count_as_float():
    s = summarize_file(os.path.join(MODELS, "lenet", "lenet_deploy.prototxt"))
    net = caffe.Net(os.path.join(MODELS, "lenet", "lenet_deploy.prototxt"), caffe.TEST)
    assert {r.weight_bits for r in summarize(net).layers if r.weights} == {32}
    assert s.compression == 1.0


def test_text_and_notebook_views():
    net = _tiny()
    text = str(net.summary())
    assert text.splitlines()[0] == "Net tiny"
    assert "Params:" in text and "MACs per item:" in text and "smaller than float32" in text
    assert [line.split()[0] for line in text.splitlines()[3:5]] == ["data", "q0"]
    html = net._repr_html_()
    assert html.startswith("<div") and "<td>conv1</td>" in html and "</table>" in html

    class Printer:
        def __init__(self):
            self.out = []

        def text(self, value):
            self.out.append(value)

    printer = Printer()
    net._repr_pretty_(printer, False)
    assert printer.out == [text]
    printer = Printer()
    net._repr_pretty_(printer, True)
    assert printer.out == ["<Net tiny>"]
