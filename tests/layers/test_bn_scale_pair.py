"""BatchNorm + Scale in place, run as a fused pair by the Net, against the two
layers run one by one (LOWBIT_FUSE=0): every blob's data and diff, the loss,
the parameter diffs and the running statistics, over two iterations, in TRAIN
and TEST, float32 and float64; where the pair is found and where it is not;
layer-by-layer passes after fused ones."""
import textwrap

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import net_fusion
from pycaffe_lowbit.cpu import jit
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers import bn_scale_pair

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba missing")

NET = """
name: "pair"
layer {{ name: "data" type: "Input" top: "data" top: "label"
  input_param {{ shape {{ dim: 3 dim: 2 dim: 5 dim: 4 }} shape {{ dim: 3 }} }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param {{ num_output: 4 kernel_size: 3 pad: 1
    weight_filler {{ type: "gaussian" std: 0.5 }} bias_filler {{ type: "constant" value: 0.2 }} }} }}
layer {{ name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" {bn} }}
layer {{ name: "scale" type: "Scale" bottom: "conv" top: "conv" {scale} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" {relu} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
  inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }}
"""
SCALE_BIAS = 'scale_param { bias_term: true filler { type: "gaussian" std: 1 } }'


def _net(phase, dtype, bn="", scale=SCALE_BIAS, force_backward=False, relu=""):
    text = textwrap.dedent(NET.format(bn=bn, scale=scale, relu=relu))
    if force_backward:
        text = "force_backward: true\n" + text
    caffe.set_random_seed(5)
    net = caffe.Net(parse_net_text(text), phase, dtype=dtype)
    rng = np.random.default_rng(1)
    for i, layer in enumerate(net.layers):
        if layer.type in ("Scale", "BatchNorm"):
            for blob in layer.blobs:
                blob.data[...] = rng.uniform(0.5, 1.5, blob.shape)
    return net


def _run(monkeypatch, fuse, phase, dtype, **kwargs):
    monkeypatch.setenv("LOWBIT_FUSE", fuse)
    net = _net(phase, dtype, **kwargs)
    rng = np.random.default_rng(2)
    out = []
    for _ in range(2):
        net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape) * 2 + 1
        net.blobs["label"].data[...] = rng.integers(0, 3, 3)
        out.append(np.asarray(net.forward_backward()))
        for name, blob in net.blobs.items():
            out += [blob.data.copy(), blob.diff.copy()]
        for name, params in net.params.items():
            out += [p.data.copy() for p in params] + [p.diff.copy() for p in params]
    return net, out


def _assert_same(got, ref, dtype):
    tol = 2e-5 if dtype == np.float32 else 1e-12
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _count_calls(monkeypatch):
    calls = []
    for name in ("forward", "backward"):
        real = getattr(bn_scale_pair.BatchNormScalePair, name)
        monkeypatch.setattr(bn_scale_pair.BatchNormScalePair, name,
                            lambda self, *a, _real=real, _n=name: calls.append((_n,) + a[1:])
                            or _real(self, *a))
    return calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("phase", [caffe.TRAIN, caffe.TEST])
@pytest.mark.parametrize("bn,scale", [
    ("", SCALE_BIAS),
    ("batch_norm_param { moving_average_fraction: 0.9 eps: 0.01 }", SCALE_BIAS),
    ("batch_norm_param { use_global_stats: true }", SCALE_BIAS),
    ("", 'scale_param { filler { type: "gaussian" std: 1 } }'),
    ("", SCALE_BIAS + " param { lr_mult: 0 } param { lr_mult: 1 }"),
    ("", SCALE_BIAS + " param { lr_mult: 1 } param { lr_mult: 0 }"),
])
def test_fused_group_matches_layers(monkeypatch, dtype, phase, bn, scale):
    calls = _count_calls(monkeypatch)
    force = phase == caffe.TEST     # a TEST net has a backward only when forced
    _, ref = _run(monkeypatch, "0", phase, dtype, bn=bn, scale=scale, force_backward=force)
    assert calls == []
    net, got = _run(monkeypatch, "1", phase, dtype, bn=bn, scale=scale, force_backward=force)
    assert list(net._pairs) == [list(net._layer_names).index("bn")]
    assert calls == [("forward", True), ("backward", True, True)] * 2
    _assert_same(got, ref, dtype)


@pytest.mark.parametrize("phase", [caffe.TRAIN, caffe.TEST])
@pytest.mark.parametrize("relu", ["relu_param { negative_slope: 0.1 }",
                                  "relu_param { negative_slope: -0.5 }", None])
def test_relu_slopes_and_no_relu(monkeypatch, phase, relu):
    calls = _count_calls(monkeypatch)
    kwargs = dict(relu=relu or "", force_backward=True)
    if relu is None:     # the pair alone: the ReLU works on another blob
        monkeypatch.setattr(net_fusion, "find_pairs", _without_relu(bn_scale_pair.find_pairs))
    _, ref = _run(monkeypatch, "0", phase, np.float64, **kwargs)
    _, got = _run(monkeypatch, "1", phase, np.float64, **kwargs)
    with_relu = relu is not None
    assert calls[:2] == [("forward", with_relu), ("backward", True, with_relu)]
    _assert_same(got, ref, np.float64)


def _without_relu(find):
    def find_pairs(*args):
        pairs = find(*args)
        for pair in pairs.values():
            pair.relu = None
        return pairs
    return find_pairs


def test_ranges_that_split_the_group(monkeypatch):
    """A range holding BatchNorm and Scale but not the ReLU runs the pair and
    then the ReLU on its own, both ways."""
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    calls = _count_calls(monkeypatch)
    fused, ref = _net(caffe.TRAIN, np.float64), _net(caffe.TRAIN, np.float64)
    names = list(fused._layer_names)
    bn, relu, last = names.index("bn"), names.index("relu"), len(names) - 1
    x = np.random.default_rng(4).standard_normal(fused.blobs["data"].shape)
    for net in (fused, ref):
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = [0, 2, 1]
    fused.forward_from_to(0, relu - 1)
    fused.forward_from_to(relu, last)
    fused.backward_from_to(last, relu)
    fused.backward_from_to(relu - 1, 0)
    assert calls == [("forward", False), ("backward", True, False)]
    monkeypatch.setenv("LOWBIT_FUSE", "0")
    ref.forward()
    ref.backward()
    for name in fused.blobs:
        np.testing.assert_allclose(fused.blobs[name].diff, ref.blobs[name].diff,
                                   rtol=1e-12, atol=1e-12)
    assert bn == relu - 2


def test_layer_by_layer_forward_then_fused_backward_without_xn(monkeypatch):
    """Global statistics, no scale gradient: the Scale's own forward keeps no
    input, so the fused backward (which needs xn for the ReLU's mask) declines
    and the layers run one by one."""
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    calls = _count_calls(monkeypatch)
    scale = SCALE_BIAS + " param { lr_mult: 0 } param { lr_mult: 1 }"
    fused = _net(caffe.TEST, np.float64, scale=scale, force_backward=True)
    ref = _net(caffe.TEST, np.float64, scale=scale, force_backward=True)
    x = np.random.default_rng(4).standard_normal(fused.blobs["data"].shape)
    for net in (fused, ref):
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = [0, 2, 1]
    for i in range(len(fused.layers)):
        fused.forward_from_to(i, i)
    fused.backward()
    monkeypatch.setenv("LOWBIT_FUSE", "0")
    ref.forward()
    ref.backward()
    assert calls == [("backward", True, True)]     # declined: returned False
    for name in fused.blobs:
        np.testing.assert_allclose(fused.blobs[name].diff, ref.blobs[name].diff,
                                   rtol=1e-12, atol=1e-12)


def test_forward_arithmetic_is_the_layers_own(monkeypatch):
    """The fused forward rounds as the two layers do: bit for bit."""
    _, ref = _run(monkeypatch, "0", caffe.TRAIN, np.float32)
    _, got = _run(monkeypatch, "1", caffe.TRAIN, np.float32)
    assert np.array_equal(got[1], ref[1])              # the data blob
    names = list(_net(caffe.TRAIN, np.float32).blobs)
    k = 1 + 2 * names.index("conv")
    assert np.array_equal(got[k], ref[k])              # conv after bn, scale, relu


def test_layer_by_layer_after_fused_passes(monkeypatch):
    """Each layer keeps the state its own pass would leave: after a fused
    forward, the layers' own backward, one at a time, gives the same diffs."""
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    fused, unfused = _net(caffe.TRAIN, np.float64), _net(caffe.TRAIN, np.float64)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(fused.blobs["data"].shape)
    for net in (fused, unfused):
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = [0, 2, 1]
    fused.forward()
    last = len(unfused.layers) - 1
    for i in range(last + 1):
        unfused.forward_from_to(i, i)
    for i in range(last, -1, -1):
        fused.backward_from_to(i, i)
        unfused.backward_from_to(i, i)
    for name in fused.blobs:
        np.testing.assert_allclose(fused.blobs[name].diff, unfused.blobs[name].diff,
                                   rtol=1e-12, atol=1e-12)
    for name in fused.params:
        for a, b in zip(fused.params[name], unfused.params[name]):
            np.testing.assert_allclose(a.diff, b.diff, rtol=1e-12, atol=1e-12)


def test_partial_ranges_run_the_layers_alone(monkeypatch):
    """forward(end='bn') leaves BatchNorm's own output in the blob."""
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    net = _net(caffe.TRAIN, np.float64)
    net.blobs["data"].data[...] = np.random.default_rng(0).standard_normal(
        net.blobs["data"].shape)
    net.forward(end="bn")
    y = net.blobs["conv"].data.reshape(3, 4, -1)
    np.testing.assert_allclose(y.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2)), 1, rtol=1e-4)


@pytest.mark.parametrize("text", [
    # Scale not in place
    NET.replace('type: "Scale" bottom: "conv" top: "conv"', 'type: "Scale" bottom: "conv" top: "sc"')
       .replace('type: "ReLU" bottom: "conv" top: "conv"', 'type: "ReLU" bottom: "sc" top: "sc"')
       .replace('bottom: "conv" top: "ip"', 'bottom: "sc" top: "ip"'),
    # a layer between them
    NET.replace('layer {{ name: "scale"', 'layer {{ name: "r0" type: "ReLU" bottom: "conv" '
                'top: "conv" }}\nlayer {{ name: "scale"'),
    # Scale over two axes
    NET.replace("{scale}", "scale_param {{ axis: 1 num_axes: 2 }}"),
])
def test_no_pair(text):
    net = caffe.Net(parse_net_text(textwrap.dedent(text.format(bn="", scale=SCALE_BIAS, relu=""))),
                    caffe.TRAIN)
    assert net._pairs == {}


def test_debug_info_runs_the_layers_alone(monkeypatch, caplog):
    monkeypatch.setenv("LOWBIT_FUSE", "1")
    net = _net(caffe.TRAIN, np.float32)
    net.debug_info = True
    called = []
    monkeypatch.setattr(bn_scale_pair.BatchNormScalePair, "forward",
                        lambda self, blob: called.append(1))
    net.forward()
    assert called == []
