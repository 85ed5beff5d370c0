"""Eltwise PROD / SUM / MAX: closed forms, Caffe tie rules, gradients, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _distinct(n, shape, seed=0):
    """n arrays whose values are all distinct and at least 0.01 apart."""
    count = int(np.prod(shape))
    values = np.random.default_rng(seed).permutation(n * count) * 0.01 - 0.5
    return [v.reshape(shape) for v in np.split(values, n)]


def _xs(n, shape=(2, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape) for _ in range(n)]


def test_sum_default_and_coeff(xp):
    a, b, c = _xs(3)
    layer, bottom, top = build_layer('type: "Eltwise"', [a, b], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], a + b)
    layer, bottom, top = build_layer(
        'type: "Eltwise" eltwise_param { operation: SUM coeff: 1 coeff: -0.5 coeff: 2 }',
        [a, b, c], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], a - 0.5 * b + 2 * c)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("coeff", ["", "coeff: 1 coeff: 1 coeff: 1", "coeff: 1 coeff: 2 coeff: 1",
                                   "coeff: 2 coeff: 1 coeff: -1"])
def test_sum_float32_bits_are_caffes_order(coeff):
    """float32 SUM: Caffe's order, y = c0 x0, then y += c_i x_i (products rounded first)."""
    xs = [x.astype(np.float32) for x in _xs(3, (2, 5, 3, 3), seed=4)]
    layer, bottom, top = build_layer('type: "Eltwise" eltwise_param { %s }' % coeff, xs,
                                     dtype=np.float32)
    cs = [np.float32(c) for c in (coeff.split()[1::2] or [1, 1, 1])]
    want = cs[0] * xs[0]
    for c, x in zip(cs[1:], xs[1:]):
        want += c * x
    np.testing.assert_array_equal(run_forward(layer, bottom, top)[0], want)


def test_prod_forward(xp):
    a, b, c = _xs(3)
    layer, bottom, top = build_layer('type: "Eltwise" eltwise_param { operation: PROD }',
                                     [a, b, c], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], a * b * c)


@pytest.mark.parametrize("stable", ["true", "false"])
def test_prod_gradient(xp, stable):
    layer, bottom, top = build_layer(
        'type: "Eltwise" eltwise_param { operation: PROD stable_prod_grad: %s }' % stable,
        _xs(3), xp=xp)
    check_gradient(layer, bottom, top)


def test_prod_stable_gradient_survives_a_zero(xp):
    a, b = _xs(2)
    a[0, 0, 0] = 0.0
    layer, bottom, top = build_layer('type: "Eltwise" eltwise_param { operation: PROD }',
                                     [a, b], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True, True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), b)
    np.testing.assert_allclose(backend.to_numpy(bottom[1].diff), a)


def test_max_forward_and_gradient(xp):
    xs = _distinct(3, (2, 3, 2))
    layer, bottom, top = build_layer('type: "Eltwise" eltwise_param { operation: MAX }',
                                     xs, xp=xp)
    np.testing.assert_array_equal(run_forward(layer, bottom, top)[0], np.max(xs, axis=0))
    check_gradient(layer, bottom, top)


def test_max_ties_follow_caffe_cpu(xp):
    # x0 == x1: bottom 1 wins (Caffe takes bottom 0 only when x0 > x1);
    # x2 equal to the max so far: the earlier bottom keeps it (strict >).
    x0 = np.array([1.0, 2.0, 0.0])
    x1 = np.array([1.0, 0.0, 0.0])
    x2 = np.array([0.0, 2.0, 3.0])
    layer, bottom, top = build_layer('type: "Eltwise" eltwise_param { operation: MAX }',
                                     [x0, x1, x2], xp=xp)
    np.testing.assert_array_equal(run_forward(layer, bottom, top)[0], [1.0, 2.0, 3.0])
    top[0].diff[...] = xp.asarray([10.0, 20.0, 30.0])
    layer.backward(top, [True] * 3, bottom)
    got = [backend.to_numpy(b.diff) for b in bottom]
    np.testing.assert_array_equal(got[0], [0, 20, 0])
    np.testing.assert_array_equal(got[1], [10, 0, 0])
    np.testing.assert_array_equal(got[2], [0, 0, 30])


def test_backward_skips_bottoms_not_asked_for(xp):
    a, b = _xs(2)
    layer, bottom, top = build_layer('type: "Eltwise"', [a, b], xp=xp)
    run_forward(layer, bottom, top)
    bottom[0].diff[...] = 3
    top[0].diff[...] = 1
    layer.backward(top, [False, True], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 3).all()
    assert (backend.to_numpy(bottom[1].diff) == 1).all()


@pytest.mark.parametrize("param, shapes, message", [
    ("eltwise_param { coeff: 1 }", [(2, 3)] * 2, "one coefficient per bottom"),
    ("eltwise_param { operation: PROD coeff: 1 coeff: 2 }", [(2, 3)] * 2,
     "only takes coefficients for summation"),
    ("", [(2, 3), (3, 2)], r"bottom\[0\] \(2, 3\), bottom\[1\] \(3, 2\)"),
    ("", [(2, 3)], "at least 2 bottom"),
])
def test_errors(xp, param, shapes, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "e" type: "Eltwise" ' + param,
                    [np.ones(s) for s in shapes], xp=xp)
