"""deploy: the bw pair, the folded pair and the packed model give the training
net's TEST outputs; the HWGQ fork's LeNet deploy pair is reproduced.

Quantizers make "within float tolerance" precise only up to level flips: a
pre-activation within rounding (~1e-6) of a Quant threshold may land on the
other side when the arithmetic changes (folding, integer popcounts). The
fork's own data shows it (a 1-ulp alpha flips 2 of 2000 levels of LeNet's
qt3, golden/hwgq/INDEX.md). So quantized blobs are compared by the fraction
of differing elements, the rest with a tolerance.
"""
import os

import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers.registry import layer_type_list
from pycaffe_lowbit.core.net import Net, TEST
from pycaffe_lowbit.proto import caffe_pb2
from support import paths
from support.calibration import calibrate_layer

pytestmark = pytest.mark.skipif(
    not {"Quant", "BinaryConvolution", "TernaryConvolution"} <= set(layer_type_list()),
    reason="needs the low-bit layers (Binary*/Ternary*/Quant)")

from pycaffe_lowbit import cli  # noqa: E402
from pycaffe_lowbit.deploy import pack, pipeline  # noqa: E402
from pycaffe_lowbit.deploy.runtime import PackedNet  # noqa: E402
from pycaffe_lowbit.formats.blobproto import blob_array  # noqa: E402

GOLDEN = os.path.join(paths.GOLDEN, "hwgq", "deploy")


def _forward(net, x):
    net.blob_by_name("data").data[...] = x
    net.forward_prefilled()
    return {n: net.blob_by_name(n).data.copy() for n in net._blob_names}


def assert_close_with_flips(got, want, max_flip_fraction, atol=1e-4, rtol=1e-4):
    far = ~np.isclose(got, want, rtol=rtol, atol=atol)
    assert far.mean() <= max_flip_fraction, "%d of %d differ" % (far.sum(), far.size)


def _deploy_all(tmp_path, text, weights_fn, batch_shape, seed=0):
    """(training outputs, bw outputs, folded outputs, packed outputs, packed net)."""
    model = tmp_path / "train.prototxt"
    model.write_text(text)
    backend.set_random_seed(seed)
    net = Net(str(model), TEST)
    weights_fn(net, np.random.default_rng(seed))
    weights = tmp_path / "train.caffemodel"
    net.save(str(weights))
    x = np.random.default_rng(seed + 1).standard_normal(batch_shape).astype(np.float32)
    ref = _forward(net, x)
    train, bw_param, folded, packed, quantized = pipeline.build_deploy(str(model), str(weights))
    pack.save_packed(packed, tmp_path / "m.lbpack")
    pnet = PackedNet(str(tmp_path / "m.lbpack"))
    pnet.forward(data=x)
    outs = {n: pnet.blob_by_name(n).data.copy() for n in pnet._blob_names}
    return ref, _forward(Net(bw_param, TEST), x), _forward(Net(folded, TEST), x), outs, pnet


def _calibrate(net, rng):
    """Random weights, then BatchNorm statistics from one batch (as after training)."""
    x = rng.standard_normal(net.blob_by_name("data").shape)
    net.blob_by_name("data").data[...] = x
    for i, layer in enumerate(net.layers):
        calibrate_layer(net, i, layer, rng)   # other data's statistics: no pre-activation at 0
        net.forward_from_to(i, i)


INPUT = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 4 dim: 3 dim: 10 dim: 10 } } }\n'
BWN_TWN = INPUT.replace('top: "data"', 'top: "data" top: "label"').replace(
    "dim: 10 } }", 'dim: 10 } shape { dim: 4 } }') + """
layer { name: "conv1" type: "%(conv)s" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "%(conv)s" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 16 kernel_size: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "ip1" type: "%(ip)s" bottom: "conv2" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""


@pytest.mark.parametrize("method, conv, ip", [("BWN", "BinaryConvolution", "BinaryInnerProduct"),
                                              ("TWN", "TernaryConvolution", "TernaryInnerProduct")])
def test_bwn_and_twn_deploy_forms_equal_the_training_net(tmp_path, method, conv, ip):
    ref, bw, folded, packed, pnet = _deploy_all(
        tmp_path, BWN_TWN % {"conv": conv, "ip": ip}, _calibrate, (4, 3, 10, 10))
    assert set(pnet.packed_layers) == {"conv1", "conv2", "ip1"}  # float activations
    assert set(pnet.packed_layers.values()) == {"float"}
    np.testing.assert_array_equal(bw["ip1"], ref["ip1"])  # the same float arithmetic
    for out in (folded, packed):
        np.testing.assert_allclose(out["prob"], np.exp(ref["ip1"]) / np.exp(ref["ip1"]).sum(
            axis=1, keepdims=True), rtol=1e-4, atol=1e-5)


HWGQ = INPUT + """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "qt1" type: "Quant" bottom: "conv1" top: "qt1" quant_param { %(q)s } }
layer { name: "conv2" type: "BinaryConvolution" bottom: "qt1" top: "conv2"
        convolution_param { num_output: 32 kernel_size: 3 pad: 1 bias_term: false weight_filler { type: "gaussian" } }
        binary_convolution_param { use_alpha: true } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "pool2" top: "pool2" }
layer { name: "qt2" type: "Quant" bottom: "pool2" top: "qt2" quant_param { %(q)s } }
layer { name: "pool2b" type: "Pooling" bottom: "qt2" top: "pool2b" pooling_param { pool: MAX kernel_size: 1 stride: 1 } }
layer { name: "conv3" type: "BinaryConvolution" bottom: "pool2b" top: "conv3"
        convolution_param { num_output: 24 kernel_size: 3 group: 2 bias_term: false weight_filler { type: "gaussian" } }
        binary_convolution_param { use_alpha: true } }
layer { name: "bn3" type: "BatchNorm" bottom: "conv3" top: "conv3" }
layer { name: "qt3" type: "Quant" bottom: "conv3" top: "qt3" quant_param { %(q)s } }
layer { name: "ip1" type: "BinaryInnerProduct" bottom: "qt3" top: "ip1"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" } }
        binary_inner_product_param { use_alpha: true } }
layer { name: "prob" type: "Softmax" bottom: "ip1" top: "prob" }
"""
QUANTS = {"3ne": 'forward_func: "hwgq" centers: 0.538 centers: 1.076 centers: 1.614 clip_thr: 1.614',
          "2n": 'forward_func: "hwgq" centers: 0.453 centers: 1.51 clip_thr: 1.51',
          "3ne_slope": 'forward_func: "hwgq" centers: 0.538 centers: 1.076 centers: 1.614 '
                       'negative_slope: 0.1',
          "sign": 'forward_func: "sign" backward_func: "hard_tanh" clip_thr: 1'}


@pytest.mark.parametrize("quant", sorted(QUANTS))
def test_hwgq_deploy_forms_equal_the_training_net(tmp_path, quant):
    ref, bw, folded, packed, pnet = _deploy_all(tmp_path, HWGQ % {"q": QUANTS[quant]},
                                                _calibrate, (4, 3, 10, 10))
    path = "xnor" if quant == "sign" else "bit-serial"
    assert pnet.packed_layers == {"conv2": path, "conv3": path, "ip1": path}
    for name in ("qt1", "qt2", "qt3", "ip1", "prob"):
        np.testing.assert_array_equal(bw[name], ref[name])
    for out in (folded, packed):
        for name in ("qt1", "qt2", "qt3"):
            assert_close_with_flips(out[name], ref[name], 0.01)
        assert_close_with_flips(out["prob"], ref["prob"], 0.1, atol=1e-3)


def assert_alpha_close(ours, fork, name):
    """a_n sign(W_n) against the fork's: same signs, and a_n = sum_j |W_nj| / k
    within the float32 summation error of k positive terms. Two summation
    orders each lie within (k - 1) 2^-24 (relative) of the exact sum, so they
    differ by at most 2 (k - 1) 2^-24; the order is the BLAS kernel's (the
    fork's sgemv, ours), so bit-equality holds on some CPUs only (Haswell
    kernels here: equal in conv2, ip1, ip2; AVX kernels: conv1 2 ulp off)."""
    ours, fork = ours.reshape(len(ours), -1), fork.reshape(len(fork), -1)
    np.testing.assert_array_equal(np.sign(ours), np.sign(fork), err_msg=name)
    k = ours.shape[1]
    bound = 2 * (k - 1) * 2.0 ** -24 * np.abs(fork).astype(np.float64)
    assert (np.abs(ours.astype(np.float64) - fork) <= bound).all(), name


def test_lenet_hwgq_golden_pair(tmp_path):
    d = np.load(os.path.join(GOLDEN, "deploy_lenet_bw.npz"))
    model = tmp_path / "deploy.prototxt"
    model.write_text(str(d["prototxt"]))
    net, bw_param, folded, packed, quantized = pipeline.build_deploy(
        str(model), os.path.join(GOLDEN, "deploy_lenet_bw.caffemodel"), do_fold=False)
    assert quantized == ["conv1", "conv2", "ip1", "ip2"]
    expected = text_format.Parse(str(d["prototxt_bw"]), caffe_pb2.NetParameter())
    assert [(l.name, l.type) for l in bw_param.layer] == [(l.name, l.type) for l in expected.layer]
    layers = {l.name: l for l in bw_param.layer}
    for key in d.files:
        if not key.startswith("param_bw__"):
            continue
        _, name, i = key.split("__")
        ours = blob_array(layers[name].blobs[int(i)]).reshape(d[key].shape)
        assert_alpha_close(ours, d[key], name)
    x = d["in__data"]
    train, bw = _forward(net, x), _forward(Net(bw_param, TEST), x)
    for name in ("qt1", "qt2", "qt3", "ip2", "prob"):
        np.testing.assert_array_equal(bw[name], train[name])  # bitwise, as in the fork
    # against the fork's float arithmetic: a few qt3 levels flip (2 of 2000 here)
    for name in ("qt1", "qt2", "qt3"):
        assert_close_with_flips(bw[name], d["out_bw__" + name], 0.005, atol=1e-5)
    np.testing.assert_allclose(bw["prob"], d["out_bw__prob"], atol=0.02)
    pack.save_packed(packed, tmp_path / "m.lbpack")
    pnet = PackedNet(str(tmp_path / "m.lbpack"))
    assert pnet.packed_layers == {"conv1": "float", "conv2": "bit-serial",
                                  "ip1": "bit-serial", "ip2": "bit-serial"}
    pnet.forward(data=x)
    for name in ("qt1", "qt2", "qt3"):
        assert_close_with_flips(pnet.blob_by_name(name).data, bw[name], 0.005)
    assert_close_with_flips(pnet.blob_by_name("prob").data, bw["prob"], 0.5, atol=0.02)
    assert (pnet.blob_by_name("prob").data.argmax(1) == d["out_bw__prob"].argmax(1)).all()


def test_cli_deploy_writes_every_form(tmp_path):
    d = np.load(os.path.join(GOLDEN, "deploy_lenet_bw.npz"))
    model = tmp_path / "lenet.prototxt"
    model.write_text(str(d["prototxt"]))
    out = tmp_path / "out"
    assert cli.main(["deploy", "--model", str(model), "--weights",
                     os.path.join(GOLDEN, "deploy_lenet_bw.caffemodel"), "--out", str(out)]) == 0
    names = sorted(os.listdir(out))
    assert names == ["lenet.lbpack", "lenet.size.txt", "lenet_bw.caffemodel",
                     "lenet_bw.prototxt", "lenet_folded.caffemodel", "lenet_folded.prototxt"]
    report = (out / "lenet.size.txt").read_text()
    assert "ip1                  binary" in report
    packed = os.path.getsize(out / "lenet.lbpack")
    assert packed * 20 < os.path.getsize(out / "lenet_bw.caffemodel")
    bw = Net(str(out / "lenet_bw.prototxt"), TEST, weights=str(out / "lenet_bw.caffemodel"))
    assert bw.layer_by_name("conv2").type == "Convolution"


def test_train_val_needs_an_input_shape(tmp_path):
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "x" } }'
            'layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
            'layer { name: "a" type: "Accuracy" bottom: "r" bottom: "label" top: "a" }')
    param = text_format.Parse(text, caffe_pb2.NetParameter())
    with pytest.raises(ValueError, match="layer 'd' \\(Data\\) reads its data"):
        pipeline.deploy_form(param, source="m.prototxt")
    out = pipeline.deploy_form(param, input_shape=[2, 1, 4, 4])
    assert [l.type for l in out.layer] == ["Input", "ReLU"] and list(out.layer[0].top) == ["data"]


@pytest.mark.parametrize("quant", ["3ne", "3ne_slope", "sign"])
def test_unfolded_packed_net_folds_batchnorm_into_quant_thresholds(tmp_path, quant):
    model = tmp_path / "train.prototxt"
    model.write_text(HWGQ % {"q": QUANTS[quant]})
    backend.set_random_seed(0)
    net = Net(str(model), TEST)
    _calibrate(net, np.random.default_rng(0))
    net.save(str(tmp_path / "w.caffemodel"))
    _, bw_param, _, packed, _ = pipeline.build_deploy(str(model), str(tmp_path / "w.caffemodel"),
                                                      do_fold=False)
    pack.save_packed(packed, tmp_path / "m.lbpack")
    pnet = PackedNet(str(tmp_path / "m.lbpack"))
    assert pnet.threshold_folded == ["bn1", "bn2", "bn3"]
    x = np.random.default_rng(1).standard_normal((4, 3, 10, 10)).astype(np.float32)
    bw = _forward(Net(bw_param, TEST), x)
    pnet.forward(data=x)
    got = pnet.blob_by_name("qt1").data
    np.testing.assert_array_equal(got, bw["qt1"])  # float conv1, then exact thresholds
    np.testing.assert_array_equal(np.signbit(got), np.signbit(bw["qt1"]))
    for name in ("qt2", "qt3"):
        assert_close_with_flips(pnet.blob_by_name(name).data, bw[name], 0.01)
