"""Reduction and ArgMax: closed forms, Caffe's ArgMax loop (ties included),
gradients, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- Reduction ------------------------------------------------------------------
OPS = {"SUM": lambda g: g.sum(1), "ASUM": lambda g: np.abs(g).sum(1),
       "SUMSQ": lambda g: (g * g).sum(1), "MEAN": lambda g: g.mean(1)}


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("axis, coeff", [(0, 1.0), (1, 0.5), (2, -2.0), (-1, 3.0)])
def test_reduction_forward(xp, op, axis, coeff):
    x = _x((2, 3, 4))
    layer, bottom, top = build_layer(
        'type: "Reduction" reduction_param { operation: %s axis: %d coeff: %g }'
        % (op, axis, coeff), [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    a = axis % 3
    assert top[0].shape == x.shape[:a]
    ref = coeff * OPS[op](x.reshape(int(np.prod(x.shape[:a])), -1))
    np.testing.assert_allclose(y, ref.reshape(x.shape[:a]), rtol=1e-12)


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_reduction_gradient(xp, op, axis):
    x = _x((2, 3, 2))
    layer, bottom, top = build_layer(
        'type: "Reduction" reduction_param { operation: %s axis: %d coeff: 1.5 }'
        % (op, axis), [x], xp=xp)
    check_gradient(layer, bottom, top, kink=0.0, kink_range=1e-3)


def test_reduction_asum_gradient_at_zero_is_zero(xp):
    layer, bottom, top = build_layer(
        'type: "Reduction" reduction_param { operation: ASUM }', [np.array([-2., 0., 3.])],
        xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 2.0
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(backend.to_numpy(bottom[0].diff), [-2., 0., 2.])


def test_reduction_errors(xp):
    with pytest.raises(LayerSetupError, match="axis 3 out of range"):
        build_layer('type: "Reduction" reduction_param { axis: 3 }', [_x((2, 3, 4))], xp=xp)


# -- ArgMax ---------------------------------------------------------------------
def caffe_argmax(x, top_k, out_max_val, axis=None):
    """argmax_layer.cpp's Forward_cpu, literally: (value, index) pairs sorted
    descending (std::greater on pairs: ties -> larger index first)."""
    if axis is not None:
        dim = x.shape[axis]
        shape = list(x.shape)
        shape[axis] = top_k
        axis_dist = int(np.prod(x.shape[axis + 1:]))
    else:
        dim = int(np.prod(x.shape[1:]))
        shape = [1] * max(x.ndim, 3)
        shape[0], shape[2] = x.shape[0], top_k
        if out_max_val:
            shape[1] = 2
        axis_dist = 1
    flat, out = x.reshape(-1), np.zeros(int(np.prod(shape)))
    for i in range(x.size // dim):
        pairs = [(flat[(i // axis_dist * dim + j) * axis_dist + i % axis_dist], j)
                 for j in range(dim)]
        pairs.sort(reverse=True)
        for j in range(top_k):
            if out_max_val and axis is None:
                out[2 * i * top_k + j] = pairs[j][1]
                out[2 * i * top_k + top_k + j] = pairs[j][0]
            else:
                value = pairs[j][0] if out_max_val else pairs[j][1]
                out[(i // axis_dist * top_k + j) * axis_dist + i % axis_dist] = value
    return out.reshape(shape)


ARGMAX_CASES = [
    # params, shape, top_k, out_max_val, axis
    ("", (3, 10), 1, False, None),
    ("top_k: 2 out_max_val: true", (2, 3, 4), 2, True, None),
    ("top_k: 3", (2, 2, 2, 3), 3, False, None),
    ("axis: 1", (2, 5, 3), 1, False, 1),
    ("axis: 2 top_k: 3 out_max_val: true", (2, 3, 6), 3, True, 2),
    ("axis: 0 top_k: 2", (4, 3), 2, False, 0),
    ("axis: -1 top_k: 2", (2, 2, 5), 2, False, 2),
]


@pytest.mark.parametrize("params, shape, top_k, out_max_val, axis", ARGMAX_CASES)
@pytest.mark.parametrize("ties", [False, True])
def test_argmax_matches_caffes_loop(xp, params, shape, top_k, out_max_val, axis, ties):
    x = _x(shape)
    if ties:  # few distinct values: many ties, broken as Caffe does
        x = np.round(x).clip(-1, 1)
    layer, bottom, top = build_layer(
        'type: "ArgMax" argmax_param { %s }' % params, [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, caffe_argmax(x, top_k, out_max_val, axis))


def test_argmax_ties_larger_index_first(xp):
    x = np.array([[1., 3., 3., 0., 3.]])
    layer, bottom, top = build_layer(
        'type: "ArgMax" argmax_param { top_k: 4 out_max_val: true }', [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y.reshape(2, 4), [[4, 2, 1, 0], [3, 3, 3, 1]])


def test_argmax_has_no_backward(xp):
    layer, bottom, top = build_layer('type: "ArgMax"', [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    with pytest.raises(NotImplementedError):
        layer.backward(top, [True], bottom)


@pytest.mark.parametrize("params, message", [
    ("top_k: 0", "top_k must not be less than 1"),
    ("top_k: 13", "flattened bottom blob per instance"),
    ("axis: 1 top_k: 4", "dimension of axis 1"),
    ("axis: 3", "axis 3 out of range"),
])
def test_argmax_errors(xp, params, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('type: "ArgMax" argmax_param { %s }' % params, [_x((2, 3, 4))], xp=xp)
