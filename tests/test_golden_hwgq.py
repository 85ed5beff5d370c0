"""The HWGQ fork's own outputs (tests/data/golden/hwgq, made with
zhaoweicai/hwgq on CPU; see its INDEX.md): every Quant and Binary* case to 1e-4
relative; LeNet-HWGQ as a whole net, from the npz and from its .caffemodel;
ResNet-18 HWGQ from ../shared (its weights regenerated and checked by SHA-1)."""
import hashlib
import json
import os
import zlib

import numpy as np
import pytest

import golden
import pycaffe_lowbit as caffe
from conftest import SHARED
from pycaffe_lowbit.io.text import parse_net_text

QUANT = golden.list_cases("hwgq/quant")
BINARY = golden.list_cases("hwgq/binary")
# Without binary_convolution_param a BinaryConvolution takes the SQ meaning
# (alpha on); the HWGQ case of that file is run with the message added.
HWGQ_DEFAULT = "bconv_noalpha_nobias_default"


@pytest.mark.parametrize("case", QUANT)
def test_quant_matches_fork(case, xp):
    golden.run_case(golden.case_path("hwgq/quant", case))


@pytest.mark.parametrize("case", sorted(set(BINARY) - {HWGQ_DEFAULT}))
def test_binary_layer_matches_fork(case, xp):
    golden.run_case(golden.case_path("hwgq/binary", case))


def _with_prototxt(path, tmp_path, edit):
    d = dict(np.load(path))
    d["prototxt"] = np.array(edit(str(d["prototxt"])))
    out = tmp_path / "case.npz"
    np.savez(out, **d)
    return str(out)


def test_binary_default_needs_the_message_for_hwgq_meaning(tmp_path, xp):
    """The fork's defaults (use_alpha false) apply once binary_convolution_param
    is present, even empty; without it the layer is SQ's BWN (alpha on)."""
    path = golden.case_path("hwgq/binary", HWGQ_DEFAULT)
    marker = "  top: \"bconv\"\n"
    assert marker in str(np.load(path)["prototxt"])
    hwgq = _with_prototxt(path, tmp_path, lambda t: t.replace(
        marker, marker + "  binary_convolution_param {}\n"))
    golden.run_case(hwgq)
    with pytest.raises(AssertionError, match="out__bconv"):
        golden.run_case(path)


# -- whole nets --------------------------------------------------------------
def set_params(net, d):
    for k in d.files:
        if k.startswith("param__"):
            _, layer, i = k.split("__")
            net.params[layer][int(i)].data[...] = d[k]


def forward_on_caffe_inputs(net, d):
    """Forward layer by layer, each layer on Caffe's inputs: once the last
    layer writing a recorded blob has run, the blob is compared with Caffe's
    (1e-4) and then replaced by Caffe's value.

    Why: binary weights times quantized activations take few distinct values,
    so a small batch is full of exact ties in exact arithmetic (MAX-pooling
    windows with two equal maxima, BatchNorm outputs that are 0). Which side
    float32 rounding puts them on depends on the order of the sums, which no
    reimplementation shares (LeNet-HWGQ: 7 of 2000 qt3 levels, 25 pool2
    argmaxes), and one flip moves everything after it."""
    last_writer = {}
    for i, name in enumerate(net._layer_names):
        for top in net.top_names[name]:
            last_writer[top] = i
    for i, name in enumerate(net._layer_names):
        net.forward_from_to(i, i)
        for top in net.top_names[name]:
            key = "out__" + top
            if last_writer[top] == i and key in d.files:
                golden.assert_close(net.blobs[top].data, d[key], key)
                net.blobs[top].data[...] = d[key]


def check_outputs(net, d, exact=()):
    for k in d.files:
        if k.startswith("out__"):
            ours = net.blobs[k[5:]].data
            if k[5:] in exact:
                np.testing.assert_array_equal(ours, d[k], err_msg=k)
            golden.assert_close(ours, d[k], k)
        elif k.startswith("paramafter__"):
            _, layer, i = k.split("__")
            golden.assert_close(net.params[layer][int(i)].data, d[k], k)


def check_backward(net, d, absolute=()):
    """Set the recorded top diffs, run backward, compare every recorded diff
    (1e-4 relative; keys in ``absolute``: 1e-6 absolute)."""
    for k in d.files:
        if k.startswith("topdiff__"):
            net.blobs[k[9:]].diff[...] = d[k]
    net.backward()
    for k in d.files:
        if k.startswith(("diff__", "blobdiff__")):
            ours = net.blobs[k.split("__", 1)[1]].diff
        elif k.startswith("paramdiff__"):
            _, layer, i = k.split("__")
            ours = net.params[layer][int(i)].diff
        else:
            continue
        if k in absolute:
            np.testing.assert_allclose(ours, d[k], rtol=0, atol=1e-6, err_msg=k)
        else:
            golden.assert_close(ours, d[k], k)


def test_lenet_hwgq_matches_fork():
    """LeNet-HWGQ in TRAIN (BatchNorm on batch statistics), every layer binary:
    every blob, gradient and BatchNorm update to 1e-4, each layer on Caffe's
    inputs (see ``forward_on_caffe_inputs``)."""
    d = np.load(golden.case_path("hwgq/nets", "net_lenet_hwgq_3ne"))
    net = caffe.Net(parse_net_text(str(d["prototxt"])), caffe.TRAIN)
    set_params(net, d)
    net.blobs["data"].data[...] = d["in__data"]
    net.blobs["label"].data[...] = d["in__label"]
    forward_on_caffe_inputs(net, d)
    check_outputs(net, d)
    check_backward(net, d)


def test_lenet_hwgq_caffemodel_loads():
    """The fork's .caffemodel (binary_*_param at field numbers 147/148) loads
    into the latent weights exactly, with the HWGQ meaning (use_alpha)."""
    base = golden.case_path("hwgq/nets", "net_lenet_hwgq_3ne")[:-4]
    d = np.load(base + ".npz")
    net = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TRAIN)
    for k in d.files:
        if k.startswith("param__"):
            _, layer, i = k.split("__")
            np.testing.assert_array_equal(net.params[layer][int(i)].data, d[k], err_msg=k)
    assert net.layer_dict["conv1"].weight_quantizer.use_alpha


RES18 = os.path.join(SHARED, "golden", "hwgq", "nets", "net_res18_hwgq_3ne.npz")


def res18_params(net, d):
    """The case's weights, regenerated by its notes' recipe (its 44 MB
    caffemodel is not kept) and checked against its ``param_sha1``: blob i of
    layer L from RandomState(crc32("net_res18_hwgq_3ne/L/i")); weights
    N(0, 2 / fan_in), biases N(0, 0.01^2), Scale 1 + 0.1 N / 0.1 N, BatchNorm 0."""
    sha1 = json.loads(str(d["param_sha1"]))
    kinds = dict(zip(net._layer_names, (layer.type for layer in net.layers)))
    for name, blobs in net.params.items():
        for i, blob in enumerate(blobs):
            shape = blob.shape
            normal = np.random.RandomState(
                zlib.crc32(("net_res18_hwgq_3ne/%s/%d" % (name, i)).encode())) \
                .standard_normal(shape)
            if kinds[name] == "BatchNorm":
                value = np.zeros(shape)
            elif kinds[name] == "Scale":
                value = 1 + 0.1 * normal if i == 0 else 0.1 * normal
            elif i == 0:
                value = normal * np.sqrt(2.0 / (np.prod(shape) / shape[0]))
            else:
                value = normal * 0.01
            value = value.astype(np.float32)
            assert hashlib.sha1(value.tobytes()).hexdigest() == sha1["%s/%d" % (name, i)]
            blob.data[...] = value


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(RES18), reason="../shared/golden/hwgq not present")
def test_res18_hwgq_matches_fork():
    """ResNet-18 HWGQ (3ne) in TRAIN, batch 2 of 224 x 224, run straight through
    (no ties at this size): the recorded blobs (first and last Quant exactly),
    BatchNorm updates, input and parameter gradients, to 1e-4."""
    d = np.load(RES18)
    net = caffe.Net(parse_net_text(str(d["prototxt"])), caffe.TRAIN)
    res18_params(net, d)
    set_params(net, d)
    net.forward(data=d["in__data"], label=d["in__label"])
    check_outputs(net, d, exact=("qt2a_branch2a", "qt5b_branch2b"))
    # conv1's bias feeds a BatchNorm: its exact gradient is 0, Caffe's is noise.
    check_backward(net, d, absolute=("paramdiff__conv1__1",))
