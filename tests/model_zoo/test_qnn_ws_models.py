"""The generated QNN and weight-search models: committed files are current, the
seed's flags are honoured, and every net builds and runs forward/backward on a
tiny batch (Data layers swapped for DummyData of the same geometry)."""
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats import text
from pycaffe_lowbit.model_zoo import qnn, weightsearch
from support import paths

ROOT = paths.ROOT


def test_committed_models_are_what_the_generators_write():
    texts = {**qnn.render(), **weightsearch.render()}
    assert len(texts) == 2 * (12 + 3 * len(weightsearch.SETS))
    stale = [p for p, t in sorted(texts.items())
             if not os.path.exists(os.path.join(ROOT, p))
             or open(os.path.join(ROOT, p), encoding="utf-8").read() != t]
    assert not stale, "run python tools/make_qnn_ws_models.py: %s" % stale[:5]


def _tiny(path, batch):
    """The net at ``path`` with each Data layer replaced by DummyData of ``batch``."""
    param = text.read_net_param(os.path.join(ROOT, path))
    for lp in param.layer:
        if lp.type != "Data":
            continue
        tp = lp.transform_param
        size = tp.crop_size or (28 if "mnist" in path else 32)
        channels = 1 if "mnist" in path else 3
        lp.type = "DummyData"
        lp.ClearField("data_param")
        lp.ClearField("transform_param")
        dp = lp.dummy_data_param
        dp.shape.add().dim.extend([batch, channels, size, size])
        dp.shape.add().dim.extend([batch])
        dp.data_filler.add(type="uniform", min=-1, max=1)
        dp.data_filler.add(type="constant", value=1)
    return param


def _run(path, batch=2):
    param = _tiny(path, batch)
    net = caffe.Net(param, caffe.TRAIN)
    net.forward()
    net.backward()
    loss = float(net.blobs["loss"].data)
    assert np.isfinite(loss)
    grads = [np.abs(p[0].diff).sum() for p in net.params.values()
             if p[0].diff is not None and p[0].data.ndim >= 2]
    assert grads and all(np.isfinite(grads)) and sum(grads) > 0
    test = caffe.Net(param, caffe.TEST)
    test.share_with(net)
    out = test.forward()
    assert "accuracy" in out
    return net


@pytest.mark.parametrize("folder", [f for f, _ in qnn.model_args()])
def test_qnn_models_build_and_run(folder):
    net = _run(folder + "/train_val.prototxt")
    kinds = {l.type for l in net.layers}
    assert {"QNNConvolution", "QNNActivation", "HingeLoss"} <= kinds


def test_qnn_flags_mirror_the_seed():
    args = qnn.parse_args("-ds CIFAR-10 -nb 0 -q 1 -ne 100 -nla 1 -nfa 64 -nlb 1 -nfb 64 "
                          "-nlc 1 -nfc 64 -ft 0 -nl hardtanh -sym 1 -lr 0.001".split())
    param = qnn.net(args)
    convs = [lp for lp in param.layer if lp.type == "QNNConvolution"]
    assert len(convs) == 3 and all(lp.qnn_weight_param.nb == 0 for lp in convs)
    assert all(lp.param[0].clip_data == 1 and lp.param[0].glorot_lr_scale for lp in convs)
    s = qnn.solver(args, "net.prototxt", "snap")
    assert (s.type, s.lr_policy, s.max_iter, s.stepsize) == ("Adam", "exp_decay", 78100, 781)
    assert s.final_lr == pytest.approx(3e-7)
    plain = qnn.net(qnn.parse_args("-q 0 -nl hardtanh".split()))
    assert {lp.type for lp in plain.layer} >= {"Convolution", "Clip"}
    with pytest.raises(SystemExit):
        qnn.parse_args("-ft 1".split())


# Built and run: both CIFAR nets in FP32, {-1, 1} and the 8-value set, ResNet-18 in
# FP32; the other value sets change only K (the logits' last axis), so their
# files are parsed and their layer types checked (ResNet-18's logits at K = 16
# are 180M floats).
BUILT = {("vgg_small", "fp32"), ("vgg_small", "1b"), ("vgg_small", "po2-3b"),
         ("resnet20", "fp32"), ("resnet20", "1b"), ("resnet20", "po2-3b"),
         ("resnet18", "fp32")}


def _searched_names(param):
    return [lp.name for lp in param.layer if lp.type.startswith("WeightSearch")]


@pytest.mark.parametrize("folder,arch,vs", [
    pytest.param(f, a, v, marks=[pytest.mark.slow] if a == "resnet18" or
                 (a, v) in (("vgg_small", "po2-3b"), ("vgg_small", "1b")) else [])
    for f, a, v in weightsearch.model_args()])
def test_weight_search_models(folder, arch, vs):
    path = folder + "/train_val.prototxt"
    searched = _searched_names(text.read_net_param(os.path.join(ROOT, path)))
    if vs == "fp32":
        assert not searched
    else:    # first conv and classifier full precision
        assert searched and "conv0" not in searched and "fc" not in searched
    if (arch, vs) in BUILT:
        _run(path, batch=1 if arch == "resnet18" else 2)


def test_weight_search_hyperparameters_from_the_seed_json():
    s = weightsearch.solver("vgg_small", "n", "p")
    assert (s.base_lr, s.weight_decay, s.max_iter, s.stepsize) == \
        (pytest.approx(0.02), pytest.approx(5e-4), 100000, 0)
    s = weightsearch.solver("resnet20", "n", "p")
    assert (s.max_iter, s.stepsize, s.lr_policy) == (78200, 391, "cosine")
    assert s.final_lr == pytest.approx(0.001)
    lp = next(l for l in weightsearch.net("resnet20", "po2-2b").layer
              if l.type == "WeightSearchConvolution")
    wp = lp.weight_search_param
    assert (wp.value_set, wp.iters_per_epoch, wp.temperature_step) == ("po2-2b", 391, 1)
    assert wp.temperature_decay == pytest.approx(0.97)
    first = weightsearch.net("resnet20", "1b", quantize_first=True, quantize_last=True)
    kinds = {l.name: l.type for l in first.layer}
    assert kinds["conv0"] == "WeightSearchConvolution"
    assert kinds["fc"] == "WeightSearchInnerProduct"
