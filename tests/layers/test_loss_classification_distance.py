"""HingeLoss, SigmoidCrossEntropyLoss, InfogainLoss, MultinomialLogisticLoss,
ContrastiveLoss: closed forms (loops over items), normalization modes, ignore_label,
gradients (with a random loss weight), no gradient to labels, bad input.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.caffemodel import write_blobproto
from pycaffe_lowbit.layers import LayerSetupError


def _away_from(values, kinks, gap=0.05):
    """``values`` nudged at least ``gap`` away from every kink."""
    v = values.copy()
    for k in kinks:
        close = np.abs(v - k) < gap
        v[close] = k + np.where(v[close] >= k, gap, -gap) * 2
    return v


# -- HingeLoss ---------------------------------------------------------------

def _hinge_reference(x, labels, norm):
    n, d = x.shape
    loss, grad = 0.0, np.zeros_like(x)
    for i in range(n):
        for j in range(d):
            s = -1.0 if j == int(labels[i]) else 1.0
            t = max(0.0, 1 + s * x[i, j])
            loss += t if norm == "L1" else t * t
            grad[i, j] = s * (np.sign(t) if norm == "L1" else 2 * t)
    return loss / n, grad / n


@pytest.mark.parametrize("norm", ["L1", "L2"])
def test_hinge_loss_closed_form_and_gradient(xp, norm):
    rng = np.random.default_rng(0)
    x = _away_from(rng.uniform(-2, 2, (4, 5)), [-1.0, 1.0])
    labels = np.array([2.0, 0.0, 4.0, 2.0])
    layer, bottom, top = build_layer(
        'name: "h" type: "HingeLoss" hinge_loss_param { norm: %s }' % norm,
        [x, labels], xp=xp)
    (loss,) = run_forward(layer, bottom, top)
    want, grad = _hinge_reference(x, labels, norm)
    np.testing.assert_allclose(loss, want)
    top[0].diff[...] = 3.0
    layer.backward(top, [True, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 3.0 * grad)
    check_gradient(layer, bottom, top, check_bottom=[0])
    assert not layer.allow_force_backward(1)
    with pytest.raises(LayerSetupError, match="label"):
        layer.backward(top, [True, True], bottom)


def test_hinge_loss_rejects_bad_labels():
    layer, bottom, top = build_layer('name: "h" type: "HingeLoss"',
                                     [np.zeros((2, 3)), np.array([0.0, 3.0])])
    with pytest.raises(LayerSetupError, match=r"label values \(bottom 1\) must be integers in \[0, 3\)"):
        run_forward(layer, bottom, top)
    with pytest.raises(LayerSetupError, match="one label per item"):
        build_layer('name: "h" type: "HingeLoss"', [np.zeros((2, 3)), np.zeros((2, 2))])


# -- SigmoidCrossEntropyLoss -------------------------------------------------

def _sce_reference(x, t, ignore=None):
    """Summed loss, number of counted positions, and the unnormalized gradient."""
    loss, count, grad = 0.0, 0, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        if ignore is not None and int(t[i]) == ignore:
            continue
        p = 1 / (1 + np.exp(-x[i]))
        loss -= t[i] * np.log(p) + (1 - t[i]) * np.log(1 - p)
        grad[i] = p - t[i]
        count += 1
    return loss, count, grad


@pytest.mark.parametrize("loss_param, z", [
    ("", "batch"), ("loss_param { normalization: FULL }", "full"),
    ("loss_param { normalization: VALID }", "valid"),
    ("loss_param { normalization: BATCH_SIZE }", "batch"),
    ("loss_param { normalization: NONE }", "none"),
    ("loss_param { normalize: true }", "valid"), ("loss_param { normalize: false }", "batch"),
])
@pytest.mark.parametrize("ignore", [None, -1])
def test_sigmoid_cross_entropy_normalizations(xp, loss_param, z, ignore):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 2)) * 3
    t = rng.uniform(0, 1, (3, 2, 2))
    if ignore is not None:
        t.reshape(-1)[[1, 5, 6]] = ignore
        text = loss_param.replace("loss_param {", "loss_param { ignore_label: -1") \
            if loss_param else "loss_param { ignore_label: -1 }"
    else:
        text = loss_param
    layer, bottom, top = build_layer(
        'name: "s" type: "SigmoidCrossEntropyLoss" %s' % text, [x, t], xp=xp)
    (loss,) = run_forward(layer, bottom, top)
    total, count, grad = _sce_reference(x, t, ignore)
    norm = {"full": 12, "valid": count, "batch": 3, "none": 1}[z]
    np.testing.assert_allclose(loss, total / norm)
    top[0].diff[...] = 2.0
    layer.backward(top, [True, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 2.0 * grad / norm, atol=1e-15)
    check_gradient(layer, bottom, top, check_bottom=[0])


def test_sigmoid_cross_entropy_is_stable_for_large_logits():
    x = np.array([[800.0, -800.0]])
    layer, bottom, top = build_layer('name: "s" type: "SigmoidCrossEntropyLoss"',
                                     [x, np.array([[0.0, 1.0]])])
    (loss,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(loss, 1600.0)


def test_sigmoid_cross_entropy_rejects_mismatched_counts():
    with pytest.raises(LayerSetupError, match="same count"):
        build_layer('name: "s" type: "SigmoidCrossEntropyLoss"',
                    [np.zeros((2, 3)), np.zeros((2, 2))])


# -- InfogainLoss ------------------------------------------------------------

def _infogain_reference(x, labels, h, ignore=None):
    """x (N, C, S): summed loss, count, unnormalized gradient."""
    e = np.exp(x - x.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    loss, count, grad = 0.0, 0, np.zeros_like(x)
    for i in range(x.shape[0]):
        for s in range(x.shape[2]):
            lab = int(labels[i, s])
            if lab == ignore:
                continue
            for c in range(x.shape[1]):
                loss -= h[lab, c] * np.log(max(p[i, c, s], 1e-20))
                grad[i, c, s] = p[i, c, s] * h[lab].sum() - h[lab, c]
            count += 1
    return loss, count, grad, p


def _infogain_data(seed=2):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 3))
    labels = rng.integers(0, 4, (2, 3)).astype(float)
    h = rng.uniform(0, 2, (4, 4))
    return x, labels, h


@pytest.mark.parametrize("loss_param, z", [
    ("", "valid"), ("loss_param { ignore_label: 1 }", "valid"),
    ("loss_param { ignore_label: 1 normalization: FULL }", "full"),
    ("loss_param { normalization: BATCH_SIZE }", "batch"),
    ("loss_param { normalization: NONE }", "none"),
])
def test_infogain_with_h_bottom(xp, loss_param, z):
    x, labels, h = _infogain_data()
    labels[0, 0], labels[1, 2] = 1, 1
    ignore = 1 if "ignore_label" in loss_param else None
    layer, bottom, top = build_layer('name: "i" type: "InfogainLoss" %s' % loss_param,
                                     [x, labels, h], n_top=2, xp=xp)
    loss, prob = run_forward(layer, bottom, top)
    total, count, grad, p = _infogain_reference(x, labels, h, ignore)
    norm = {"full": 6, "valid": count, "batch": 2, "none": 1}[z]
    np.testing.assert_allclose(loss, total / norm)
    np.testing.assert_allclose(prob, p)
    top[0].diff[...] = 0.5
    layer.backward(top, [True, False, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 0.5 * grad / norm, atol=1e-15)
    assert [layer.allow_force_backward(i) for i in range(3)] == [True, False, False]
    layer, bottom, top = build_layer('name: "i" type: "InfogainLoss" %s' % loss_param,
                                     [x, labels, h], xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[0])
    with pytest.raises(LayerSetupError, match="infogain inputs"):
        layer.backward(top, [True, False, True], bottom)


def test_infogain_h_from_source_and_axis(tmp_path):
    x, labels, h = _infogain_data(3)
    path = str(tmp_path / "H.binaryproto")
    write_blobproto(h.astype(np.float32), path)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1))  # classes on the last axis
    layer, bottom, top = build_layer(
        'name: "i" type: "InfogainLoss" infogain_loss_param { source: "%s" axis: -1 }'
        % path, [xt, labels])
    (loss,) = run_forward(layer, bottom, top)
    total, count, _, _ = _infogain_reference(x, labels, h.astype(np.float32))
    np.testing.assert_allclose(loss, total / count, rtol=1e-6)
    check_gradient(layer, bottom, top, check_bottom=[0])


def test_infogain_identity_h_is_softmax_loss():
    x, labels, _ = _infogain_data(4)
    layer, bottom, top = build_layer('name: "i" type: "InfogainLoss"',
                                     [x, labels, np.eye(4)])
    swl, sb, st = build_layer('name: "s" type: "SoftmaxWithLoss"', [x, labels])
    np.testing.assert_allclose(run_forward(layer, bottom, top), run_forward(swl, sb, st))


@pytest.mark.parametrize("text, bottoms, msg", [
    ('name: "i" type: "InfogainLoss"', 2, "source must be specified"),
    ('name: "i" type: "InfogainLoss" loss_param { normalize: true }', 3, "deprecated"),
    ('name: "i" type: "InfogainLoss"', "h3", r"H \(bottom 2\) must be 4x4"),
    ('name: "i" type: "InfogainLoss"', "lab", "Number of labels"),
])
def test_infogain_rejects_bad_input(text, bottoms, msg):
    x, labels, h = _infogain_data()
    blobs = {2: [x, labels], 3: [x, labels, h], "h3": [x, labels, np.eye(3)],
             "lab": [x, labels[:, :2], h]}[bottoms]
    with pytest.raises(LayerSetupError, match=msg):
        build_layer(text, blobs)


# -- MultinomialLogisticLoss -------------------------------------------------

def test_multinomial_logistic_closed_form_threshold_and_gradient(xp):
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 1, (4, 3))
    p /= p.sum(1, keepdims=True)
    labels = np.array([0.0, 2.0, 1.0, 2.0])
    p[3, 2] = 0.0  # clamped at 1e-20
    layer, bottom, top = build_layer('name: "m" type: "MultinomialLogisticLoss"',
                                     [p, labels], xp=xp)
    (loss,) = run_forward(layer, bottom, top)
    picked = np.maximum(p[np.arange(4), labels.astype(int)], 1e-20)
    np.testing.assert_allclose(loss, -np.log(picked).sum() / 4)
    top[0].diff[...] = 2.0
    layer.backward(top, [True, False], bottom)
    want = np.zeros_like(p)
    want[np.arange(4), labels.astype(int)] = -2.0 / 4 / picked
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), want)
    p[3, 2] = 0.3
    bottom[0].data[...] = xp.asarray(p)
    check_gradient(layer, bottom, top, check_bottom=[0])
    with pytest.raises(LayerSetupError, match="one label per item"):
        build_layer('name: "m" type: "MultinomialLogisticLoss"', [p, np.zeros((4, 2))])


# -- ContrastiveLoss ---------------------------------------------------------

def _contrastive_reference(a, b, y, margin, legacy):
    n = a.shape[0]
    loss, ga = 0.0, np.zeros_like(a)
    for i in range(n):
        d = a[i] - b[i]
        d2 = float((d * d).sum())
        if int(y[i]):
            loss += d2
            ga[i] = d
        elif legacy:
            loss += max(margin - d2, 0.0)
            ga[i] = -d if margin - d2 > 0 else 0
        else:
            dist = np.sqrt(d2)
            loss += max(margin - dist, 0.0) ** 2
            ga[i] = -(margin - dist) / (dist + 1e-4) * d if margin - dist > 0 else 0
    return loss / n / 2, ga / n


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_closed_form_and_gradient(xp, legacy):
    rng = np.random.default_rng(6)
    a = rng.uniform(-0.6, 0.6, (6, 3, 1, 1))
    b = rng.uniform(-0.6, 0.6, (6, 3, 1, 1))
    y = np.array([1, 0, 0, 1, 0, 0.5], float).reshape(6, 1, 1, 1)  # 0.5 -> 0: dissimilar
    margin = 1.5 if legacy else 1.0
    text = ('name: "c" type: "ContrastiveLoss" contrastive_loss_param { margin: %g '
            'legacy_version: %s }' % (margin, str(legacy).lower()))
    layer, bottom, top = build_layer(text, [a, b, y], xp=xp)
    (loss,) = run_forward(layer, bottom, top)
    want, ga = _contrastive_reference(a.reshape(6, 3), b.reshape(6, 3), y.reshape(6),
                                      margin, legacy)
    np.testing.assert_allclose(loss, want)
    top[0].diff[...] = 2.0
    layer.backward(top, [True, True, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff).reshape(6, 3), 2 * ga)
    np.testing.assert_allclose(backend.to_numpy(bottom[1].diff).reshape(6, 3), -2 * ga)
    assert not layer.allow_force_backward(2)
    # Caffe's 1e-4 in the non-legacy dissimilar gradient is off the exact derivative
    check_gradient(layer, bottom, top, check_bottom=[0, 1],
                   threshold=1e-5 if legacy else 2e-3)
    with pytest.raises(LayerSetupError, match="similarity input"):
        layer.backward(top, [True, True, True], bottom)


@pytest.mark.parametrize("shapes, msg", [
    ([(2, 3, 2, 1), (2, 3, 2, 1), (2, 1, 1, 1)], r"\(N, C, 1, 1\)"),
    ([(2, 3), (2, 4), (2, 1)], "same channels"),
    ([(2, 3), (2, 3), (2, 2)], "one value per pair"),
])
def test_contrastive_rejects_bad_shapes(shapes, msg):
    with pytest.raises(LayerSetupError, match=msg):
        build_layer('name: "c" type: "ContrastiveLoss"', [np.zeros(s) for s in shapes])
