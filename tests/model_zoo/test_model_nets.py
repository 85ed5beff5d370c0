"""models/: the shapes of the generated models and their nets running.

* The models without a seed file have the published shape (depth, which
  layers are quantized, full-precision first conv and classifier).
* The train/test nets build with Input layers in place of their data layers:
  CIFAR and MNIST nets in TRAIN and TEST, running forward and backward on a
  batch of 2 (ResNet-56: two of its nets run, the rest are set up); ImageNet
  nets are set up at batch 1 in TRAIN, once per architecture (see RUNS).
  Every deploy net declares (N, C, H, W), builds and outputs (N, classes).
"""
import re

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.model_zoo.model import DATA_TYPES
from pycaffe_lowbit.proto import caffe_pb2
from support.zoo import (MODELS, BY_FOLDER, NETS, BATCH, _small, _text)

# -- the shapes of the models ----------------------------------------------------------

WEIGHTED = ("Convolution", "InnerProduct")


def _weighted(net):
    return [l for l in net.layer if l.type.endswith(WEIGHTED)]


def _train_net(model):
    name = "train_test_s1.prototxt" if "train_test_s1.prototxt" in model.files else \
        next(n for n in model.files if n.startswith("train"))
    return model.files[name][0]


SQ_COUNTS = {"cifar10_vgg9": 9, "cifar10_resnet56": 58, "alexnet_bn": 8, "resnet18": 21}


@pytest.mark.parametrize("model", [m for m in MODELS if m.module == "sq"],
                         ids=[m.folder for m in MODELS if m.module == "sq"])
def test_sq_quantizes_every_weight_layer(model):
    stem, method = model.folder.rsplit("_", 1)
    kind = {"fwn": "", "bwn": "Binary", "twn": "Ternary", "sqbwn": "Binary",
            "sqtwn": "Ternary"}[method]
    for name, (net, _) in model.files.items():
        if name.startswith("solver"):
            continue
        layers = _weighted(net)
        assert len(layers) == SQ_COUNTS[stem]
        stage = re.search(r"_s(\d)\.", name)
        ratio = 100 if name == "deploy.prototxt" else \
            (50, 75, 87.5, 100)[int(stage.group(1)) - 1] if stage else None
        for layer in layers:
            assert layer.type.startswith(kind) and layer.type[len(kind):] in WEIGHTED
            param = layer.convolution_param if "Conv" in layer.type else layer.inner_product_param
            sq = method.startswith("sq")
            assert (param.sq, param.HasField("ratio")) == (sq, sq)
            # no binary_*_param: that message would give the layer HWGQ's meaning
            assert not (layer.HasField("binary_convolution_param")
                        or layer.HasField("binary_inner_product_param"))
            if sq:
                assert param.ratio == ratio


HWGQ = [m for m in MODELS if m.module == "hwgq"]


@pytest.mark.parametrize("model", HWGQ, ids=[m.folder for m in HWGQ])
def test_hwgq_pattern(model):
    """BatchNorm (stats only, frozen, fraction 0.95) -> Quant -> every binary
    layer; first conv and classifier full precision, except LeNet (all binary)."""
    net = _train_net(model)
    levels = {"alexnet_hwgq_2n": "2n", "alexnet_bw_sign": "sign"}.get(model.folder, "3ne")
    from pycaffe_lowbit.model_zoo.hwgq_nets import LEVELS
    writer = {}
    for layer in net.layer:
        if layer.type.startswith("Binary") and layer.bottom[0] != "data":
            quant = writer[layer.bottom[0]]
            assert quant.type == "Quant", layer.name
            assert writer[quant.bottom[0]].type == "BatchNorm", layer.name
            alpha = layer.binary_convolution_param if "Conv" in layer.type \
                else layer.binary_inner_product_param
            assert alpha.use_alpha
        if layer.type == "Quant":
            expected = caffe_pb2.QuantParameter()
            for key, value in LEVELS[levels].items():
                if isinstance(value, list):
                    getattr(expected, key).extend(value)
                else:
                    setattr(expected, key, value)
            assert layer.quant_param == expected
        if layer.type == "BatchNorm":
            assert layer.batch_norm_param.moving_average_fraction == pytest.approx(0.95)
            assert [p.lr_mult for p in layer.param] == [0, 0, 0]
        for top in layer.top:
            writer[top] = layer
    weighted = _weighted(net)
    types = [l.type for l in weighted]
    if model.folder == "lenet_hwgq":
        assert all(t.startswith("Binary") for t in types)
    else:
        assert types[0] == "Convolution" and types[-1] == "InnerProduct"
        assert all(t.startswith("Binary") for t in types[1:-1])


DEPTHS = {"resnet18_hwgq": 18, "resnet34_hwgq": 34, "resnet50_hwgq": 50, "resnet18_fwn": 18,
          "darknet19_hwgq": 19, "vgg_variant_hwgq": 13, "alexnet_hwgq": 8, "googlenet_hwgq": 22}


@pytest.mark.parametrize("folder", sorted(DEPTHS))
def test_depth(folder):
    """Weighted layers on the main path (projection shortcuts not counted; a
    GoogLeNet inception module counts as its two-deep branches)."""
    net = _train_net(BY_FOLDER[folder])
    weighted = [l for l in _weighted(net) if "branch1" not in l.name]
    if folder.startswith("googlenet"):
        modules = [l for l in net.layer if l.type == "Concat"]
        assert len(modules) == 9
        weighted = [l for l in weighted if not l.name.startswith("inception")]
        assert len(weighted) + 2 * len(modules) == DEPTHS[folder]
    else:
        assert len(weighted) == DEPTHS[folder]
    if folder == "resnet50_hwgq":
        assert sum(l.type == "Eltwise" for l in net.layer) == 16
        assert net.layer[-4].inner_product_param.num_output == 1000


# -- the nets build and run ------------------------------------------------------------

def with_inputs(net, dataset, batch):
    """A copy of ``net`` whose data layers are Input layers of ``batch`` images and labels."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    for layer in out.layer:
        if layer.type in DATA_TYPES:
            name, tops, include = layer.name, list(layer.top), list(layer.include)
            layer.Clear()
            layer.name, layer.type = name, "Input"
            layer.top.extend(tops)
            layer.include.extend(include)
            layer.input_param.shape.add().dim.extend((batch,) + dataset.shape)
            layer.input_param.shape.add().dim.extend([batch])
    return out


def _missing_types(net):
    missing = sorted({l.type for l in net.layer} - set(caffe.layer_type_list()))
    if missing:
        pytest.skip("layer types not in this build yet: %s" % ", ".join(missing))


# Which builds run. Stages 2 and 3 of an SQ model are stage 1's net with ratio
# 75 and 87.5 (test_sq_quantizes_every_weight_layer, test_equals_seed): stages 1
# (SQ at work) and 4 (ratio 100) run. ImageNet nets are only set up, at batch 1,
# in TRAIN, and once per architecture: the other methods' nets differ only in
# the weight layers' types and SQ fields (or the Quant settings), and their
# deploy nets, set up below, have those layers; a TEST net has the TRAIN net's
# layers (no phase rules outside the data layers). CIFAR and MNIST nets run
# forward and backward, except that of ResNet-56's nine nets two run (binary,
# and ternary with SQ) and the rest are set up: they hold VGG-9's layer types
# wired as those two are, and 57 convolutions make each run take seconds.
IMAGENET_TRAIN_BUILDS = {"alexnet_bn_sqtwn", "resnet18_sqtwn", "alexnet_hwgq", "resnet18_hwgq",
                         "resnet34_hwgq", "resnet50_hwgq", "vgg_variant_hwgq", "googlenet_hwgq",
                         "darknet19_hwgq"}
RESNET56_RUNS = {"cifar10_resnet56_bwn/train_test.prototxt",
                 "cifar10_resnet56_sqtwn/train_test_s1.prototxt"}
RUNS = [(m, name, phase) for m, name in NETS if not re.search(r"_s[234]\.", name) or
        (_small(m) and "_s4." in name)
        for phase in (caffe.TRAIN, caffe.TEST)
        if _small(m) or (phase == caffe.TRAIN and m.folder in IMAGENET_TRAIN_BUILDS)]


def _runs_forward(model, name):
    return _small(model) and ("resnet56" not in model.folder or
                              "%s/%s" % (model.folder, name) in RESNET56_RUNS)


def _slow_if_big(model):
    """VGG-Variant holds 130M weights; setting it up takes seconds."""
    return [pytest.mark.slow] if model.folder == "vgg_variant_hwgq" else []


@pytest.mark.parametrize("model,name,phase", [
    pytest.param(m, name, phase, marks=_slow_if_big(m),
                 id="%s/%s-%s" % (m.folder, name, "TRAIN" if phase == caffe.TRAIN else "TEST"))
    for m, name, phase in RUNS])
def test_net_builds_and_runs(model, name, phase):
    net_param, _ = model.files[name]
    small = _small(model)
    param = with_inputs(net_param, model.dataset, BATCH if small else 1)
    run = _runs_forward(model, name)
    _missing_types(param)
    caffe.set_random_seed(0)
    net = caffe.Net(param, phase)
    logits = next(l.bottom[0] for l in net_param.layer if l.type == "SoftmaxWithLoss")
    assert net.blobs[logits].shape == ((BATCH if small else 1), model.dataset.classes)
    if not run:
        return
    for layer in net.layers:                 # the statistics a trained model would carry
        if layer.type == "BatchNorm":
            layer.blobs[1].data[...] = 1.0
            layer.blobs[2].data[...] = 1.0
    rng = np.random.default_rng(0)
    net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
    net.blobs["label"].data[...] = rng.integers(0, model.dataset.classes, BATCH)
    out = net.forward()
    assert np.isfinite(out["loss"]) and out["loss"] > 0
    net.backward()
    for layer_name, blobs in net.params.items():
        for blob in blobs:
            assert np.all(np.isfinite(blob.diff)), "%s: %s" % (model.folder, layer_name)
    first = _weighted(net_param)[0].name
    assert np.any(net.params[first][0].diff != 0)   # the gradient reaches the first layer


@pytest.mark.parametrize("model", [pytest.param(m, marks=_slow_if_big(m), id=m.folder)
                                   for m in MODELS])
def test_deploy_net(texts, model):
    text = _text(texts, model, "deploy.prototxt")
    raw = parse_net_text(text, upgrade_net=False)
    assert not raw.input and not raw.input_shape      # no deprecated fields: no upgrade warning
    first = raw.layer[0]
    assert (first.type, list(first.top)) == ("Input", ["data"])
    assert tuple(first.input_param.shape[0].dim) == ((model.dataset.deploy_batch,)
                                                     + model.dataset.shape)
    assert not [l for l in raw.layer if l.type in DATA_TYPES + ("SoftmaxWithLoss", "Accuracy")]
    assert not [l for l in raw.layer if len(l.param)]
    assert all(l.batch_norm_param.use_global_stats for l in raw.layer if l.type == "BatchNorm")
    _missing_types(raw)
    first.input_param.shape[0].dim[0] = 1      # the declared batch, cut to 1 to stay quick
    net = caffe.Net(raw, caffe.TEST)
    assert net.blobs["prob"].shape == (1, model.dataset.classes)
    if _runs_forward(model, "deploy.prototxt"):
        net.blobs["data"].data[...] = np.random.default_rng(0).standard_normal(
            net.blobs["data"].shape)
        prob = net.forward()["prob"]
        assert np.allclose(prob.sum(axis=1), 1, atol=1e-5)
