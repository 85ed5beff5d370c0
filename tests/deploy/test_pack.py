"""The packed model file: which layers pack, round trip, size report, refusals."""
import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe_lowbit.deploy import pack
from pycaffe_lowbit.deploy.runtime import PackedNet, PackedRuntimeError
from pycaffe_lowbit.core.net import Net, TEST
from pycaffe_lowbit.proto import caffe_pb2

NET = """
name: "bw"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 16 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1"
        inner_product_param { num_output: 64 bias_term: false weight_filler { type: "gaussian" } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" } } }
"""


def _quantize(array, rng, ternary=False):
    rows = array.reshape(array.shape[0], -1)
    s = rng.choice([-1, 0, 1] if ternary else [-1, 1], rows.shape)
    alpha = np.abs(rows).mean(axis=1, keepdims=True)
    return (alpha * s).astype(np.float32).reshape(array.shape)


def _net(ternary_ip1=False, extra=""):
    net = Net(text_format.Parse(NET + extra, caffe_pb2.NetParameter()), TEST)
    rng = np.random.default_rng(0)
    for name, ternary in (("conv1", False), ("ip1", ternary_ip1)):
        blob = net.layer_by_name(name).blobs[0]
        blob.data[...] = _quantize(blob.data, rng, ternary)
    return net


def test_quantized_layers_are_found_and_round_trip(tmp_path):
    net = _net(ternary_ip1=True)
    model = pack.pack_net(net.to_proto())
    assert sorted(model.packed) == ["conv1", "ip1"]
    assert not model.packed["conv1"].ternary and model.packed["ip1"].ternary
    path = tmp_path / "m.lbpack"
    pack.save_packed(model, path)
    back = pack.load_packed(path)
    for name in ("conv1", "ip1"):
        np.testing.assert_array_equal(back.packed[name].dense().reshape(
            net.layer_by_name(name).blobs[0].shape), net.layer_by_name(name).blobs[0].data)
    np.testing.assert_array_equal(back.floats["conv1"][1], net.layer_by_name("conv1").blobs[1].data)
    np.testing.assert_array_equal(back.floats["ip2"][0], net.layer_by_name("ip2").blobs[0].data)
    assert not back.floats.get("ip1")


def test_size_report_approaches_32x_for_binary_layers():
    net = _net()
    rows, (before, after) = pack.size_report(pack.pack_net(net.to_proto()))
    ratios = {name: b / a for name, kind, b, a in rows}
    kinds = {name: kind for name, kind, b, a in rows}
    assert kinds == {"conv1": "binary", "ip1": "binary", "ip2": "float"}
    # ip1: 64 rows of k = 1024 bits -> 16 words + a float32 alpha each: 32 * 1024 / 1056
    assert ratios["ip1"] == pytest.approx(32 * 1024 / (1024 + 32))
    assert ratios["ip2"] == 1
    assert before > after
    assert "total" in pack.format_size_report(pack.pack_net(net.to_proto()))


def test_named_layer_that_is_not_quantized_is_refused():
    with pytest.raises(ValueError, match="layer 'ip2': its weights are not alpha"):
        pack.pack_net(_net().to_proto(), names=["ip1", "ip2"])


def test_runtime_float_path_equals_the_net(tmp_path):
    net = _net(ternary_ip1=True)
    path = tmp_path / "m.lbpack"
    pack.save_packed(pack.pack_net(net.to_proto()), path)
    packed = PackedNet(str(path))
    assert packed.packed_layers == {"conv1": "float", "ip1": "float"}
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    net.blob_by_name("data").data[...] = x
    net.forward_prefilled()
    out = packed.forward(data=x)
    np.testing.assert_allclose(out["ip2"], net.blob_by_name("ip2").data, rtol=1e-6, atol=1e-6)


def test_runtime_refuses_a_layer_it_cannot_run_naming_it(tmp_path):
    extra = 'layer { name: "smooth" type: "BNLL" bottom: "ip2" top: "smooth" }'
    path = tmp_path / "m.lbpack"
    pack.save_packed(pack.pack_net(_net(extra=extra).to_proto()), path)
    with pytest.raises(PackedRuntimeError, match="cannot run layer 'smooth' of type BNLL"):
        PackedNet(str(path))


def test_not_a_packed_model(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(1))
    with pytest.raises(ValueError, match="not a packed model"):
        pack.load_packed(tmp_path / "x.npz")
