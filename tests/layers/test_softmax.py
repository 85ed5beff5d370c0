"""Softmax: closed form along any axis, stability, gradients, in place.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward, run_in_place
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _closed_form(x, axis):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_forward_closed_form(axis, xp):
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    layer, bottom, top = build_layer('type: "Softmax" softmax_param { axis: %d }' % axis,
                                     [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, _closed_form(x, axis), rtol=1e-12)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-12)


def test_default_axis_is_1(xp):
    x = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    layer, bottom, top = build_layer('type: "Softmax"', [x], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], _closed_form(x, 1),
                               rtol=1e-12)


def test_numerically_stable(xp):
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1002.0]])
    layer, bottom, top = build_layer('type: "Softmax"', [x], xp=xp, dtype=np.float32)
    y, = run_forward(layer, bottom, top)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, _closed_form(x - x.max(1, keepdims=True), 1), rtol=1e-6)


@pytest.mark.parametrize("axis", [1, 2])
def test_gradient(axis, xp):
    x = np.random.default_rng(2).standard_normal((2, 3, 4))
    layer, bottom, top = build_layer('type: "Softmax" softmax_param { axis: %d }' % axis,
                                     [x], xp=xp)
    check_gradient(layer, bottom, top)


def test_in_place(xp):
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    layer, bottom, top = build_layer('type: "Softmax"', [x], xp=xp)
    y = run_forward(layer, bottom, top)[0]
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    dx = backend.to_numpy(bottom[0].diff)

    _, y_in_place, blob = run_in_place('type: "Softmax"', x, dy, xp)
    np.testing.assert_allclose(y_in_place, y, rtol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(blob.diff), dx, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("axis", [3, -4])
def test_bad_axis(axis):
    with pytest.raises(LayerSetupError, match="axis %d out of range" % axis):
        build_layer('name: "sm" type: "Softmax" softmax_param { axis: %d }' % axis,
                    [np.zeros((2, 3, 4))])
