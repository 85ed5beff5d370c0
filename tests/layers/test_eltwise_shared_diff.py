"""SUM Eltwise handing dy itself to bottoms whose producers only read or
replace their top diff (eltwise.share_sum_diffs): which bottoms share, and
every blob's and parameter's diff equal to the copying path (LOWBIT_FUSE=0)."""
import textwrap

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import parse_net_text

RESIDUAL = """
name: "residual"
layer { name: "data" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } shape { dim: 2 } } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "x"
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "convA" type: "Convolution" bottom: "x" top: "a"
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.5 } } }
%(between)s
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "x" top: "s" %(param)s }
layer { name: "relu" type: "ReLU" bottom: "s" top: "s" }
layer { name: "ip" type: "InnerProduct" bottom: "s" top: "ip"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
BN_SCALE = """
layer { name: "bn" type: "BatchNorm" bottom: "a" top: "a" }
layer { name: "scale" type: "Scale" bottom: "a" top: "a" scale_param { bias_term: true } }
"""


def _net(between=BN_SCALE, param=""):
    text = textwrap.dedent(RESIDUAL % {"between": between, "param": param})
    caffe.set_random_seed(3)
    return caffe.Net(parse_net_text(text), caffe.TRAIN)


def _diffs(monkeypatch, fuse, **kwargs):
    monkeypatch.setenv("LOWBIT_FUSE", fuse)
    net = _net(**kwargs)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2):
        net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
        net.blobs["label"].data[...] = [1, 2]
        net.forward()
        net.backward()
        out += [(name, b.diff.copy()) for name, b in net.blobs.items()]
        out += [(name, p.diff.copy()) for name, ps in net.params.items() for p in ps]
    return net, out


@pytest.mark.parametrize("between,param,shared", [
    (BN_SCALE, "", {0, 1}),
    ("", "", {0, 1}),
    (BN_SCALE + 'layer { name: "r" type: "ReLU" bottom: "a" top: "a" }', "", {1}),
    (BN_SCALE, "eltwise_param { coeff: 2 coeff: 1 }", {1}),
    (BN_SCALE, "eltwise_param { operation: MAX }", set()),
])
def test_shared_bottoms_and_same_diffs(monkeypatch, between, param, shared):
    net, got = _diffs(monkeypatch, "1", between=between, param=param)
    ref_net, ref = _diffs(monkeypatch, "0", between=between, param=param)
    assert net.layer_dict["sum"].share_diff == frozenset(shared)
    assert ref_net.layer_dict["sum"].share_diff == frozenset()
    for (name, a), (_, b) in zip(got, ref):   # LOWBIT_FUSE=0 also unfuses BatchNorm +
        scale = max(1.0, float(np.abs(b).max()))   # Scale: rounding, relative to the blob
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6 * scale, err_msg=name)
    sum_layer = list(net._layer_names).index("sum")
    top = net._blobs[net._top_id_vecs[sum_layer][0]]
    for k, blob_id in enumerate(net._bottom_id_vecs[sum_layer]):
        same = net._blobs[blob_id].diff is top.diff
        assert same == (k in shared and not (k == 0 and "BatchNorm" in between))


def test_view_producers_do_not_share(monkeypatch):
    """A Reshape's bottom diff is a view of its top's: sharing would reach an
    in-place layer before it, so the bottom it makes is copied."""
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    between = ('layer { name: "r" type: "ReLU" bottom: "a" top: "a" }\n'
               'layer { name: "flat" type: "Reshape" bottom: "a" top: "a2" '
               'reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }\n'
               'layer { name: "back" type: "Reshape" bottom: "a2" top: "a3" '
               'reshape_param { shape { dim: 0 dim: 3 dim: 4 dim: 4 } } }')
    text = textwrap.dedent(RESIDUAL % {"between": between, "param": ""}).replace(
        'bottom: "a" bottom: "x" top: "s"', 'bottom: "a3" bottom: "x" top: "s"')
    net = caffe.Net(parse_net_text(text), caffe.TRAIN)
    assert net.layer_dict["sum"].share_diff == frozenset({1})
