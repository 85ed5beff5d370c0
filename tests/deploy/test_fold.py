"""fold: BatchNorm (+Scale) folded into the preceding Convolution / InnerProduct."""
import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe_lowbit.deploy import fold
from pycaffe_lowbit.core.net import Net, TEST
from pycaffe_lowbit.proto import caffe_pb2

NET = """
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 3 dim: 2 dim: 9 dim: 9 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 bias_term: %(bias)s
                            weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "bn1" type: "BatchNorm" bottom: "pool1" top: "pool1" }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 5 kernel_size: 3 weight_filler { type: "gaussian" } } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "bn2" }
layer { name: "sc2" type: "Scale" bottom: "bn2" top: "bn2" scale_param { bias_term: true } }
layer { name: "relu2" type: "ReLU" bottom: "bn2" top: "bn2" }
layer { name: "ip" type: "InnerProduct" bottom: "bn2" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
layer { name: "bn3" type: "BatchNorm" bottom: "ip" top: "ip" }
layer { name: "sc3" type: "Scale" bottom: "ip" top: "out" scale_param { bias_term: true } }
"""


def _net(bias="false", gamma_sign=1.0):
    param = text_format.Parse(NET % {"bias": bias}, caffe_pb2.NetParameter())
    net = Net(param, TEST)
    rng = np.random.default_rng(0)
    for layer in net.layers:
        if layer.type == "BatchNorm":
            c = layer.blobs[0].count
            layer.blobs[0].data[...] = rng.standard_normal(c) * 3
            layer.blobs[1].data[...] = rng.uniform(0.5, 4, c) * 3
            layer.blobs[2].data[...] = 3
        elif layer.type == "Scale":
            c = layer.blobs[0].count
            layer.blobs[0].data[...] = gamma_sign * rng.uniform(0.5, 2, c)
            layer.blobs[1].data[...] = rng.standard_normal(c)
    return net


def _outputs(net, x):
    net.blob_by_name("data").data[...] = x
    net.forward_prefilled()
    return {n: net.blob_by_name(n).data.copy() for n in ("out",)}


@pytest.mark.parametrize("bias", ["true", "false"])
def test_folded_net_gives_the_same_outputs(bias):
    net = _net(bias)
    x = np.random.default_rng(1).standard_normal((3, 2, 9, 9)).astype(np.float32)
    ref = _outputs(net, x)
    param, folded = fold.fold_batchnorm(net.to_proto())
    assert folded == ["bn1", "bn2", "sc2", "bn3", "sc3"]
    assert [l.type for l in param.layer] == ["Input", "Convolution", "Pooling",
                                             "Convolution", "ReLU", "InnerProduct"]
    got = _outputs(Net(param, TEST), x)
    np.testing.assert_allclose(got["out"], ref["out"], rtol=1e-5, atol=1e-5)


def test_negative_scale_is_not_folded_through_max_pooling():
    net = _net()
    net.layer_by_name("bn1").blobs[0].data[...] = 0
    param = net.to_proto()
    # a Scale with a negative gamma right after bn1 would reverse max pooling's order
    param.layer.insert(4, text_format.Parse(
        'name: "sc1" type: "Scale" bottom: "pool1" top: "pool1" scale_param { bias_term: false }'
        ' blobs { shape { dim: 4 } data: -1 data: 1 data: 1 data: 1 }',
        caffe_pb2.LayerParameter()))
    out, folded = fold.fold_batchnorm(param)
    assert "bn1" not in folded and "bn2" in folded
    x = np.random.default_rng(2).standard_normal((3, 2, 9, 9)).astype(np.float32)
    ref = Net(param, TEST)
    np.testing.assert_allclose(_outputs(Net(out, TEST), x)["out"], _outputs(ref, x)["out"],
                               rtol=1e-5, atol=1e-5)


def test_output_read_twice_is_not_folded():
    param = text_format.Parse(NET % {"bias": "true"}, caffe_pb2.NetParameter())
    param.layer.add(name="peek", type="ReLU", bottom=["conv2"], top=["peek"])
    net = Net(param, TEST)
    _, folded = fold.fold_batchnorm(net.to_proto())
    assert "bn2" not in folded and "bn1" in folded


def test_batchnorm_thresholds_are_exact_bit_for_bit():
    """BN(x) > t  <=>  x > tau, checked on every float32 near each tau and on
    the BatchNorm layer's own float32 output."""
    from support.helpers import build_layer, run_forward
    rng = np.random.default_rng(5)
    c = 6
    blobs = [rng.standard_normal(c).astype(np.float32) * 4,
             rng.uniform(0.01, 3, c).astype(np.float32) * 4, np.float32([4])]
    ts = np.float32([0, 0.807, 1.345, -np.float32(1e-45)])
    tau = fold.batchnorm_thresholds(blobs, 1e-5, ts)
    near = [np.nextafter(tau, np.float32(np.inf) * s) for s in (1, -1)]
    x = np.concatenate([tau, *near, rng.standard_normal((c, 200)).astype(np.float32) * 5], axis=1)
    layer, bottom, top = build_layer('name: "bn" type: "BatchNorm" '
                                     'batch_norm_param { use_global_stats: true eps: 1e-5 }',
                                     [x.T.reshape(-1, c)], dtype=np.float32)
    for blob, value in zip(layer.blobs, blobs):
        blob.data[...] = value
    y = run_forward(layer, bottom, top)[0].T  # (c, n)
    for j, t in enumerate(ts):
        np.testing.assert_array_equal(y > t, x > tau[:, j:j + 1])
