"""Accuracy: Caffe's top-k rule (ties count against), ignore_label, per-class top,
axis, bad parameters. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, run_forward
from pycaffe_lowbit.layers import LayerSetupError


def _caffe_loop(x, labels, top_k=1, ignore=None, axis=1):
    """Caffe's AccuracyLayer::Forward_cpu, loop for loop."""
    x = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
    labels = labels.reshape(-1).astype(int)
    num_classes = x.shape[1]
    correct, count = 0, 0
    per_class, nums = np.zeros(num_classes), np.zeros(num_classes)
    for scores, label in zip(x, labels):
        if label == ignore:
            continue
        nums[label] += 1
        better = -1
        for k in range(num_classes):
            if better >= top_k:
                break
            better += scores[k] >= scores[label]
        if better < top_k:
            correct += 1
            per_class[label] += 1
        count += 1
    acc = correct / count if count else 0.0
    return acc, np.where(nums == 0, 0, per_class / np.maximum(nums, 1))


@pytest.mark.parametrize("top_k", [1, 2, 3, 5])
def test_matches_caffe_loop_with_ties(top_k, xp):
    rng = np.random.default_rng(top_k)
    x = rng.integers(0, 3, (40, 5)).astype(float)  # many ties
    labels = rng.integers(0, 5, 40).astype(float)
    layer, bottom, top = build_layer(
        'type: "Accuracy" accuracy_param { top_k: %d }' % top_k, [x, labels], n_top=2, xp=xp)
    acc, per_class = run_forward(layer, bottom, top)
    want_acc, want_per_class = _caffe_loop(x, labels, top_k)
    assert acc.shape == () and per_class.shape == (5,)
    np.testing.assert_allclose(acc, want_acc, rtol=1e-12)
    np.testing.assert_allclose(per_class, want_per_class, rtol=1e-12)


def test_ties_count_against_true_label(xp):
    x = np.array([[1.0, 2.0, 2.0], [1.0, 2.0, 2.0], [3.0, 2.0, 2.0]])
    labels = np.array([1.0, 2.0, 0.0])
    layer, bottom, top = build_layer('type: "Accuracy"', [x, labels], xp=xp)
    assert run_forward(layer, bottom, top)[0] == pytest.approx(1 / 3)
    layer, bottom, top = build_layer('type: "Accuracy" accuracy_param { top_k: 2 }',
                                     [x, labels], xp=xp)
    assert run_forward(layer, bottom, top)[0] == 1.0


def test_top1_is_argmax(xp):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((50, 6))
    labels = rng.integers(0, 6, 50).astype(float)
    layer, bottom, top = build_layer('type: "Accuracy"', [x, labels], xp=xp)
    assert run_forward(layer, bottom, top)[0] == pytest.approx(
        np.mean(x.argmax(1) == labels))


def test_ignore_label_and_axis(xp):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 4))  # classes on axis 2
    labels = rng.integers(0, 4, (2, 3)).astype(float)
    labels[0, 1] = labels[1, 2] = -1
    layer, bottom, top = build_layer(
        'type: "Accuracy" accuracy_param { axis: -1 ignore_label: -1 top_k: 2 }',
        [x, labels], n_top=2, xp=xp)
    acc, per_class = run_forward(layer, bottom, top)
    want_acc, want_per_class = _caffe_loop(x, labels, 2, ignore=-1, axis=2)
    np.testing.assert_allclose(acc, want_acc, rtol=1e-12)
    np.testing.assert_allclose(per_class, want_per_class, rtol=1e-12)


def test_nothing_counted_gives_zero(xp):
    layer, bottom, top = build_layer('type: "Accuracy" accuracy_param { ignore_label: 3 }',
                                     [np.zeros((2, 4)), np.full(2, 3.0)], n_top=2, xp=xp)
    acc, per_class = run_forward(layer, bottom, top)
    assert acc == 0 and not per_class.any()


def test_top_k_larger_than_classes():
    with pytest.raises(LayerSetupError, match="top_k must be less than or equal"):
        build_layer('type: "Accuracy" accuracy_param { top_k: 5 }',
                    [np.zeros((2, 4)), np.zeros(2)])


def test_label_count_mismatch():
    with pytest.raises(LayerSetupError, match="label count must be 6, got 3"):
        build_layer('type: "Accuracy"', [np.zeros((2, 2, 3)), np.zeros((3, 1))])


def test_label_out_of_range():
    layer, bottom, top = build_layer('type: "Accuracy"', [np.zeros((2, 4)), np.array([0, 4.0])])
    with pytest.raises(LayerSetupError, match=r"integers in \[0, 4\)"):
        run_forward(layer, bottom, top)


def test_backward_not_implemented(xp):
    layer, bottom, top = build_layer('type: "Accuracy"', [np.zeros((2, 4)), np.zeros(2)], xp=xp)
    run_forward(layer, bottom, top)
    layer.backward(top, [False, False], bottom)
    with pytest.raises(NotImplementedError):
        layer.backward(top, [True, False], bottom)


def test_float32_top(xp):
    layer, bottom, top = build_layer('type: "Accuracy"', [np.eye(3), np.arange(3.0)],
                                     n_top=2, xp=xp, dtype=np.float32)
    acc, per_class = run_forward(layer, bottom, top)
    assert acc.dtype == per_class.dtype == np.float32 and acc == 1.0
