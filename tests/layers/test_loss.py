"""SoftmaxWithLoss and EuclideanLoss: closed forms, normalization modes,
ignore_label, loss weights (the loss top diff Caffe sets up), gradients, bad input.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support import golden
from support.helpers import build_layer, check_gradient, run_forward
import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers import LayerSetupError

FLT_MIN = float(np.finfo(np.float32).tiny)


@pytest.mark.parametrize("name", ["swl_valid", "swl_batch", "swl_none", "swl_full",
                                  "swl_2d_weight2", "euclidean_loss"])
def test_setup_puts_the_loss_weight_in_the_top_diff(name, xp):
    """Net setup leaves each loss top's diff at its loss weight, exactly what Caffe
    had at backward (the golden top diff); tests/golden/test_golden_layers.py runs the rest."""
    d = np.load(golden.case_path("layers", name))
    net = caffe.Net(parse_net_text(str(d["prototxt"])), getattr(caffe, str(d["phase"])))
    for k in (k for k in d.files if k.startswith("topdiff__")):
        np.testing.assert_array_equal(backend.to_numpy(net.blob_by_name(k[9:]).diff), d[k])


# -- SoftmaxWithLoss ---------------------------------------------------------

def _swl_data(shape=(2, 4, 3), ignore=None, seed=0):
    """Scores (N, C, ...) and labels (N, 1, ...) with a few ignored positions."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    label_shape = (shape[0], 1) + tuple(shape[2:])
    labels = rng.integers(0, shape[1], label_shape).astype(np.float64)
    if ignore is not None:
        labels.reshape(-1)[[0, 3]] = ignore
    return x, labels


def _swl_reference(x, labels, ignore=None, mode="VALID"):
    """Loss and dL/dx (weight 1) by a loop over positions, axis 1."""
    n, c = x.shape[:2]
    s = x.reshape(n, c, -1)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    lab = labels.reshape(n, -1).astype(int)
    loss, count, grad = 0.0, 0, p.copy()
    for i in range(n):
        for j in range(s.shape[2]):
            if lab[i, j] == ignore:
                grad[i, :, j] = 0
                continue
            loss -= np.log(max(p[i, lab[i, j], j], FLT_MIN))
            grad[i, lab[i, j], j] -= 1
            count += 1
    z = {"FULL": n * s.shape[2], "VALID": count if ignore is not None else n * s.shape[2],
         "BATCH_SIZE": n, "NONE": 1}[mode]
    z = max(1, z)
    return loss / z, (grad / z).reshape(x.shape)


def _swl_text(loss_param="", extra=""):
    return ('name: "loss" type: "SoftmaxWithLoss" loss_param { %s } %s'
            % (loss_param, extra))


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, 2])
def test_swl_forward_backward(mode, ignore, xp):
    x, labels = _swl_data(ignore=ignore)
    lp = "normalization: %s" % mode
    if ignore is not None:
        lp += " ignore_label: %d" % ignore
    layer, bottom, top = build_layer(_swl_text(lp), [x, labels], xp=xp)
    loss, = run_forward(layer, bottom, top)
    want_loss, want_grad = _swl_reference(x, labels, ignore, mode)
    assert loss.shape == ()
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    layer.backward(top, [True, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), want_grad,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
def test_swl_gradient(mode, xp):
    x, labels = _swl_data(ignore=255)
    layer, bottom, top = build_layer(
        _swl_text("normalization: %s ignore_label: 255" % mode), [x, labels], xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[0])


@pytest.mark.parametrize("normalize,mode", [("true", "VALID"), ("false", "BATCH_SIZE")])
def test_swl_legacy_normalize(normalize, mode, xp):
    x, labels = _swl_data(ignore=1)
    layer, bottom, top = build_layer(_swl_text("normalize: %s ignore_label: 1" % normalize),
                                     [x, labels], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0],
                               _swl_reference(x, labels, 1, mode)[0], rtol=1e-12)


def test_swl_normalization_overrides_normalize(xp):
    x, labels = _swl_data(ignore=1)
    layer, bottom, top = build_layer(
        _swl_text("normalize: false normalization: NONE ignore_label: 1"), [x, labels], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0],
                               _swl_reference(x, labels, 1, "NONE")[0], rtol=1e-12)


def test_swl_loss_weight_scales_gradient(xp):
    x, labels = _swl_data()
    layer, bottom, top = build_layer(_swl_text(extra="loss_weight: 3"), [x, labels], xp=xp)
    assert float(top[0].diff) == 3.0
    loss, = run_forward(layer, bottom, top)
    layer.backward(top, [True, False], bottom)
    want_loss, want_grad = _swl_reference(x, labels)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)  # the top is unweighted
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 3 * want_grad, rtol=1e-12)


def test_swl_prob_top(xp):
    x, labels = _swl_data()
    layer, bottom, top = build_layer(_swl_text(), [x, labels], n_top=2, xp=xp)
    assert layer.loss_weights == [1.0, 0.0]
    _, prob = run_forward(layer, bottom, top)
    e = np.exp(x)
    np.testing.assert_allclose(prob, e / e.sum(1, keepdims=True), rtol=1e-12)
    top[1].diff[...] = 5.0  # Caffe's backward ignores the prob top's diff
    layer.backward(top, [True, False], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff),
                               _swl_reference(x, labels)[1], rtol=1e-12)


def test_swl_axis(xp):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4))
    labels = rng.integers(0, 4, (2, 3)).astype(float)
    layer, bottom, top = build_layer(_swl_text(extra="softmax_param { axis: 2 }"),
                                     [x, labels], xp=xp)
    want, _ = _swl_reference(np.moveaxis(x, 2, 1), labels.reshape(2, 1, 3))
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want, rtol=1e-12)
    check_gradient(layer, bottom, top, check_bottom=[0])


def test_swl_clamps_log_at_flt_min(xp):
    x = np.array([[0.0, -1000.0]])
    layer, bottom, top = build_layer(_swl_text(), [x, np.array([1.0])], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], -np.log(FLT_MIN))


def test_swl_all_ignored(xp):
    x, _ = _swl_data()
    labels = np.full((2, 1, 3), 7.0)
    layer, bottom, top = build_layer(_swl_text("ignore_label: 7"), [x, labels], xp=xp)
    assert run_forward(layer, bottom, top)[0] == 0.0
    layer.backward(top, [True, False], bottom)
    assert not backend.to_numpy(bottom[0].diff).any()


def test_swl_no_gradient_to_labels(xp):
    x, labels = _swl_data()
    layer, bottom, top = build_layer(_swl_text(), [x, labels], xp=xp)
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)
    run_forward(layer, bottom, top)
    with pytest.raises(LayerSetupError, match="cannot backpropagate to label"):
        layer.backward(top, [True, True], bottom)


def test_swl_label_count_mismatch():
    with pytest.raises(LayerSetupError, match="label count must be 6, got 4"):
        build_layer(_swl_text(), [np.zeros((2, 4, 3)), np.zeros((2, 2))])


def test_swl_first_dim_mismatch():
    with pytest.raises(LayerSetupError, match="same first dimension"):
        build_layer(_swl_text(), [np.zeros((2, 4)), np.zeros((3,))])


@pytest.mark.parametrize("bad", [4.0, -1.0])
def test_swl_label_out_of_range(bad):
    layer, bottom, top = build_layer(_swl_text(), [np.zeros((2, 4)), np.array([0.0, bad])])
    with pytest.raises(LayerSetupError, match=r"integers in \[0, 4\)"):
        run_forward(layer, bottom, top)


def test_swl_blob_counts():
    with pytest.raises(LayerSetupError, match="at most 2 top"):
        build_layer(_swl_text(), [np.zeros((2, 4)), np.zeros(2)], n_top=3)


# -- EuclideanLoss -------------------------------------------------------------

def _euclid_data(seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, 4)), rng.standard_normal((3, 4))


def test_euclidean_forward_backward(xp):
    a, b = _euclid_data()
    layer, bottom, top = build_layer('type: "EuclideanLoss" loss_weight: 2', [a, b], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0],
                               ((a - b) ** 2).sum() / 3 / 2, rtol=1e-12)
    layer.backward(top, [True, True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 2 * (a - b) / 3, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(bottom[1].diff), -2 * (a - b) / 3, rtol=1e-12)


def test_euclidean_gradient(xp):
    layer, bottom, top = build_layer('type: "EuclideanLoss"', list(_euclid_data()), xp=xp)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)
    assert layer.loss_weights == [1.0]
    check_gradient(layer, bottom, top)


def test_euclidean_shapes_with_same_inner_count(xp):
    a, b = _euclid_data()
    layer, bottom, top = build_layer('type: "EuclideanLoss"', [a, b.reshape(3, 2, 2)], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0],
                               ((a - b) ** 2).sum() / 6, rtol=1e-12)
    layer.backward(top, [False, True], bottom)
    assert bottom[1].diff.shape == (3, 2, 2)
    np.testing.assert_allclose(backend.to_numpy(bottom[1].diff).reshape(3, 4),
                               -(a - b) / 3, rtol=1e-12)


def test_euclidean_dimension_mismatch():
    with pytest.raises(LayerSetupError, match="same dimension"):
        build_layer('type: "EuclideanLoss"', [np.zeros((3, 4)), np.zeros((3, 5))])
