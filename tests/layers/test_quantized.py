"""BinaryConvolution, TernaryConvolution, BinaryInnerProduct, TernaryInnerProduct:
forward against conv / X Q^T with the effective weight written here, the
straight-through backward, numeric gradients with quantization off, the SQ
selection inside a layer, which fork's meaning a file gets, and errors.
The forks' own numbers: tests/golden/test_golden_hwgq.py."""
import os

import numpy as np
import pytest

from support import paths
from support.helpers import build_layer, check_gradient, run_forward
from support.seed_nets import with_inputs
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError

FILL = 'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" }'


def _conv_text(kind="Binary", conv="", extra=""):
    return ('name: "q" type: "%sConvolution" convolution_param { num_output: 4 '
            'kernel_size: 3 pad: 1 %s %s } %s' % (kind, conv, FILL, extra))


def _ip_text(kind="Binary", ip="", extra=""):
    return ('name: "q" type: "%sInnerProduct" inner_product_param { num_output: 5 %s %s } %s'
            % (kind, ip, FILL, extra))


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def conv_ref(x, w, b, pad=1):
    """Cross-correlation, stride 1, one group: y[n,o] = sum_c,i,j w[o,c,i,j] x[n,c,.+i,.+j] + b[o]."""
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xpad, w.shape[2:], axis=(2, 3))
    return np.einsum("nchwij,ocij->nohw", win, w) + b[None, :, None, None]


def binary_ref(w, alpha=True):
    rows = w.reshape(w.shape[0], -1)
    a = np.abs(rows).mean(axis=1, keepdims=True) if alpha else 1.0
    return (np.where(rows >= 0, 1.0, -1.0) * a).reshape(w.shape)


def ternary_ref(w):
    rows = w.reshape(w.shape[0], -1)
    delta = 0.7 * np.abs(rows - rows.mean()).mean()
    big = np.abs(rows) > delta
    count = big.sum(axis=1, keepdims=True)
    a = np.where(count > 0, (np.abs(rows) * big).sum(axis=1, keepdims=True)
                 / np.maximum(count, 1), 0.0)
    return (a * np.sign(rows) * big).reshape(w.shape)


def _params(layer):
    return [backend.to_numpy(b.data) for b in layer.blobs]


# -- forward -------------------------------------------------------------------
@pytest.mark.parametrize("kind, extra, effective", [
    ("Binary", "", binary_ref),                                       # SQ: BWN, alpha
    ("Binary", "binary_convolution_param { use_alpha: true }", binary_ref),
    ("Binary", "binary_convolution_param { }", lambda w: binary_ref(w, alpha=False)),
    ("Binary", "binary_convolution_param { use_binarization: false }", lambda w: w),
    ("Ternary", "", ternary_ref),
], ids=["sq", "hwgq-alpha", "hwgq-default", "hwgq-float", "ternary"])
def test_convolution_forward(xp, kind, extra, effective):
    x = _x((2, 3, 5, 5))
    layer, bottom, top = build_layer(_conv_text(kind, extra=extra), [x], xp=xp)
    w, b = _params(layer)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, conv_ref(x, effective(w), b), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(_params(layer)[0], w)       # the latent W is untouched


@pytest.mark.parametrize("kind, extra, effective", [
    ("Binary", "", binary_ref),
    ("Binary", "binary_inner_product_param { use_alpha: false }",
     lambda w: binary_ref(w, alpha=False)),
    ("Binary", "binary_inner_product_param { use_binarization: false }", lambda w: w),
    ("Ternary", "", ternary_ref),
], ids=["sq", "hwgq-noalpha", "hwgq-float", "ternary"])
@pytest.mark.parametrize("transpose", [False, True])
def test_inner_product_forward(xp, kind, extra, effective, transpose):
    """transpose: true is ignored: W stays num_output x K."""
    x = _x((3, 2, 2, 2))
    ip = "transpose: true" if transpose else ""
    layer, bottom, top = build_layer(_ip_text(kind, ip, extra), [x], xp=xp)
    w, b = _params(layer)
    assert w.shape == (5, 8)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, x.reshape(3, 8) @ effective(w).T + b, rtol=1e-10)


# -- backward ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Binary", "Ternary"])
def test_backward_is_straight_through(xp, kind):
    """dx is the input gradient with Q; dW is the plain weight gradient dY (x) X
    (not multiplied by alpha, not masked); db = sum dY. Checked against the
    derivatives of conv_ref with Q held fixed."""
    x, dy = _x((2, 3, 4, 4)), _x((2, 4, 4, 4), seed=1)
    layer, bottom, top = build_layer(_conv_text(kind), [x], xp=xp)
    w, b = _params(layer)
    q = binary_ref(w) if kind == "Binary" else ternary_ref(w)
    run_forward(layer, bottom, top)
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xpad, (3, 3), axis=(2, 3))
    dw = np.einsum("nchwij,nohw->ocij", win, dy)
    dx = np.zeros_like(xpad)
    for i in range(3):
        for j in range(3):
            dx[:, :, i:i + 4, j:j + 4] += np.einsum("nohw,oc->nchw", dy, q[:, :, i, j])
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), dw, rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[1].diff), dy.sum(axis=(0, 2, 3)),
                               rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), dx[:, :, 1:-1, 1:-1],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("text", [
    _conv_text("Binary", extra="binary_convolution_param { use_binarization: false }"),
    _conv_text("Binary", conv="sq: true ratio: 0"),
    _conv_text("Ternary", conv="sq: true ratio: 0 group: 1 stride: 2"),
    _ip_text("Binary", extra="binary_inner_product_param { use_binarization: false }"),
    _ip_text("Binary", ip="sq: true ratio: 0"),
    _ip_text("Ternary", ip="sq: true ratio: 0"),
], ids=["bconv-float", "bconv-sq0", "tconv-sq0", "bip-float", "bip-sq0", "tip-sq0"])
def test_gradient_with_quantization_off(xp, text):
    """use_binarization: false, or SQ with ratio 0 (every filter kept in full
    precision): the layer is the plain one and passes the numeric check."""
    shape = (2, 2, 4, 4) if "Convolution" in text else (3, 4)
    layer, bottom, top = build_layer(text, [_x(shape)], xp=xp)
    check_gradient(layer, bottom, top)


# -- SQ in a layer ---------------------------------------------------------------
@pytest.mark.parametrize("phase", [0, 1], ids=["TRAIN", "TEST"])
def test_sq_redraws_every_forward_and_backward_uses_the_same_weight(xp, phase):
    text = ('name: "q" type: "TernaryConvolution" convolution_param { num_output: 16 '
            'kernel_size: 1 sq: true ratio: 75 %s }' % FILL)
    x = _x((2, 3, 2, 2))
    layer, bottom, top = build_layer(text, [x], xp=xp, phase=phase)
    w = _params(layer)[0]
    q = ternary_ref(w)
    masks = []
    for _ in range(4):
        run_forward(layer, bottom, top)
        sel = layer.weight_quantizer.selected.copy()
        assert sel.sum() == 4                       # int((1 - 0.75) * 16)
        eff = backend.to_numpy(layer._backward_weight())
        np.testing.assert_allclose(eff[sel], w[sel], rtol=0)
        np.testing.assert_allclose(eff[~sel], q[~sel], rtol=1e-10)
        masks.append(sel)
    assert len({m.tobytes() for m in masks}) > 1
    dy = _x((2, 16, 2, 2), seed=3)
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    dx = np.einsum("nohw,oc->nchw", dy, eff[:, :, 0, 0])
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), dx, rtol=1e-10)


def test_sq_reproducible_from_the_seed(xp):
    text = _ip_text("Binary", ip="sq: true ratio: 50")

    def run(seed):
        backend.set_random_seed(3)
        layer, bottom, top = build_layer(text.replace("num_output: 5", "num_output: 12"),
                                         [_x((2, 6))], xp=xp)
        backend.set_random_seed(seed)
        return [run_forward(layer, bottom, top)[0] for _ in range(3)]

    a, b, c = run(1), run(1), run(2)
    for ya, yb in zip(a, b):
        np.testing.assert_array_equal(ya, yb)
    assert any(not np.array_equal(ya, yc) for ya, yc in zip(a, c))


def test_sq_off_unless_asked(xp):
    for conv in ("ratio: 50", "sq: true ratio: 100", "sq: true"):
        layer, _, _ = build_layer(_conv_text(conv=conv), [_x((1, 3, 4, 4))], xp=xp)
        assert type(layer.weight_quantizer).__name__ == "BinaryWeights"


# -- errors ----------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    (_conv_text(conv="sq: true ratio: 150"), "ratio .* \\[0, 100\\]"),
    (_ip_text(ip="sq: true ratio: -5"), "ratio"),
    (_conv_text("Ternary", extra="binary_convolution_param { use_alpha: true }"),
     "binary_convolution_param applies to Binary"),
])
def test_errors_name_the_layer(text, message):
    with pytest.raises(LayerSetupError, match="layer 'q'.*" + message):
        build_layer(text, [_x((2, 3, 4, 4)) if "Convolution" in text else _x((2, 4))])


# -- the forks' files ----------------------------------------------------------------
SQ_FILE = "sq/CIFAR/VGG-9/SQ-BWN/train_test_s1.prototxt"
HWGQ_FILE = "hwgq/examples/cifar10/vgg-hwgq-3ne-clip-poly/train_val.prototxt"


def _seed_net(rel, phase):
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.formats.text import read_net_param
    path = os.path.join(paths.SEEDS, rel)
    if not os.path.exists(path):
        pytest.skip("../shared/seeds not present")
    return caffe.Net(with_inputs(path, read_net_param(path)), phase)


def test_sq_file_keeps_sq_meaning():
    """SQ-BWN stage 1: every Binary* layer is BWN (alpha on, no
    binary_*_param in the file) under a ratio-50 selection, redrawn in TEST."""
    net = _seed_net(SQ_FILE, 1)
    quantized = [l for l in net.layers if l.type.startswith("Binary")]
    assert quantized
    for layer in quantized:
        sel = layer.weight_quantizer
        assert sel.ratio == 50 and sel.inner.use_alpha
    net.blobs["data"].data[...] = _x(net.blobs["data"].shape)
    first = {k: v.copy() for k, v in net.forward().items()}
    second = net.forward()
    assert any(not np.array_equal(first[k], second[k]) for k in first)


def test_hwgq_file_keeps_hwgq_meaning():
    """HWGQ VGG (3ne): Binary* layers take the file's use_alpha, Quant layers
    the 3ne levels and clip; a TRAIN forward and backward run."""
    net = _seed_net(HWGQ_FILE, 0)
    kinds = {l.type for l in net.layers}
    assert {"BinaryConvolution", "Quant"} <= kinds
    for layer in net.layers:
        if layer.type.startswith("Binary"):
            assert layer.weight_quantizer.use_alpha
        elif layer.type == "Quant":
            np.testing.assert_array_equal(layer.quantizer.value.centers,
                                          np.array([0.538, 1.076, 1.614], np.float32))
            assert layer.quantizer.gradient.clip == float(np.float32(1.614))
    net.blobs["data"].data[...] = _x(net.blobs["data"].shape)
    net.blobs["label"].data[...] = np.arange(net.blobs["label"].count) % 10
    net.forward()
    net.backward()
    assert all(np.isfinite(b.diff).all() for blobs in net.params.values() for b in blobs)
