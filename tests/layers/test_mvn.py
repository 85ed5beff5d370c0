"""MVN: closed forms, Caffe's backward formula, gradients, shapes, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2 + 0.5


def _mvn(params, x, xp=np):
    return build_layer('name: "mvn" type: "MVN" mvn_param { %s }' % params, [x], xp=xp)


def _reference(x, across, variance, eps):
    groups = x.shape[0] if across else x.shape[0] * x.shape[1]
    g = x.reshape(groups, -1)
    y = g - g.mean(1, keepdims=True)
    s = np.sqrt((y ** 2).mean(1, keepdims=True)) + eps if variance else np.ones((groups, 1))
    return y / s, s


@pytest.mark.parametrize("params, across, variance, eps", [
    ("", False, True, 1e-9),
    ("normalize_variance: false", False, False, 0),
    ("across_channels: true eps: 0.001", True, True, 1e-3),
    ("across_channels: true normalize_variance: false", True, False, 0),
])
def test_mvn_forward_closed_form(xp, params, across, variance, eps):
    x = _x((2, 3, 4, 5))
    layer, bottom, top = _mvn(params, x, xp)
    (y,) = run_forward(layer, bottom, top)
    eps = float(np.float32(eps))  # mvn_param.eps is a float
    ref, _ = _reference(x, across, variance, eps)
    np.testing.assert_allclose(y, ref.reshape(x.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("params", ["", "normalize_variance: false",
                                    "across_channels: true",
                                    "across_channels: true normalize_variance: false"])
def test_mvn_gradient(xp, params):
    layer, bottom, top = _mvn(params, _x((2, 3, 3, 2)), xp)
    check_gradient(layer, bottom, top, threshold=1e-6)


def test_mvn_backward_is_caffes_formula_with_eps(xp):
    """With eps > 0 Caffe's backward is (dy - E[dy] - y E[y dy]) / (sigma + eps),
    not the exact derivative; we match Caffe."""
    x = _x((2, 2, 3, 3))
    layer, bottom, top = _mvn("eps: 0.5", x, xp)
    run_forward(layer, bottom, top)
    dy = _x((2, 2, 3, 3), 1)
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    y, s = _reference(x, False, True, 0.5)
    g = dy.reshape(y.shape)
    ref = (g - g.mean(1, keepdims=True) - y * (y * g).mean(1, keepdims=True)) / s
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), ref.reshape(x.shape),
                               rtol=1e-12, atol=1e-12)


def test_mvn_2d_bottom_gives_4d_top(xp):
    x = _x((3, 4))
    layer, bottom, top = _mvn("across_channels: true", x, xp)
    (y,) = run_forward(layer, bottom, top)
    assert top[0].shape == (3, 4, 1, 1)
    np.testing.assert_allclose(y.reshape(3, 4), _reference(x.reshape(3, 4, 1, 1), True,
                                                           True, 1e-9)[0], atol=1e-12)


def test_mvn_float32_keeps_dtype(xp):
    layer, bottom, top = build_layer('type: "MVN"', [_x((2, 2, 3, 3))], xp=xp,
                                     dtype=np.float32)
    run_forward(layer, bottom, top)
    assert top[0].data.dtype == np.float32


def test_mvn_rejects_5d(xp):
    with pytest.raises(LayerSetupError, match="at most 4 axes"):
        _mvn("", _x((1, 2, 2, 2, 2)), xp)
