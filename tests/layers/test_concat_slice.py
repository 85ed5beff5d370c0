"""Concat and Slice: shapes, legacy axis fields, gradients, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- Concat ---------------------------------------------------------------------
@pytest.mark.parametrize("param, axis", [
    ("", 1), ("concat_param { axis: 0 }", 0), ("concat_param { axis: -1 }", 2),
    ("concat_param { concat_dim: 2 }", 2),
])
def test_concat_forward(xp, param, axis):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for s, extra in zip(shapes, (1, 2, 3)):
        s[axis] = extra
    xs = [_x(s, i) for i, s in enumerate(shapes)]
    layer, bottom, top = build_layer('type: "Concat" ' + param, xs, xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis))


def test_concat_gradient_and_partial_backward(xp):
    xs = [_x((2, 1, 3)), _x((2, 2, 3), 1)]
    layer, bottom, top = build_layer('type: "Concat"', xs, xp=xp)
    check_gradient(layer, bottom, top)
    dy = _x((2, 3, 3), 2)
    top[0].diff[...] = xp.asarray(dy)
    bottom[0].diff[...] = 5
    layer.backward(top, [False, True], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 5).all()
    np.testing.assert_array_equal(backend.to_numpy(bottom[1].diff), dy[:, 1:])


def test_concat_single_bottom_shares(xp):
    layer, bottom, top = build_layer('type: "Concat"', [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    assert top[0].data is bottom[0].data
    layer.backward(top, [True], bottom)
    assert bottom[0].diff is top[0].diff


@pytest.mark.parametrize("shapes, param, message", [
    ([(2, 3, 4), (2, 3, 5)], "", r"except at concat_axis 1: bottom\[0\] \(2, 3, 4\), "
                                 r"bottom\[1\] 'b' \(2, 3, 5\)"),
    ([(2, 3, 4), (2, 3)], "", r"same #axes.*bottom\[1\] 'b'"),
    ([(2, 3), (2, 3)], "concat_param { axis: 2 }", "axis 2 out of range"),
    ([(2, 3), (2, 3)], "concat_param { concat_dim: 2 }", "concat_dim 2 out of range"),
    ([(2, 3), (2, 3)], "concat_param { axis: 0 concat_dim: 0 }", "not both"),
])
def test_concat_errors(xp, shapes, param, message):
    text = 'name: "cat" type: "Concat" bottom: "a" bottom: "b" ' + param
    with pytest.raises(LayerSetupError, match=message):
        build_layer(text, [_x(s) for s in shapes], xp=xp)


# -- Slice ----------------------------------------------------------------------
@pytest.mark.parametrize("param, n_top, bounds", [
    ("slice_param { slice_point: 1 slice_point: 4 }", 3, [0, 1, 4, 6]),
    ("", 3, [0, 2, 4, 6]),
    ("slice_param { axis: 2 }", 2, [0, 2, 4]),
    ("slice_param { axis: -1 slice_point: 3 }", 2, [0, 3, 4]),
    ("slice_param { slice_dim: 0 }", 2, [0, 1, 2]),
])
def test_slice_forward(xp, param, n_top, bounds):
    x = _x((2, 6, 4))
    axis = {"axis: 2": 2, "axis: -1": 2, "slice_dim: 0": 0}
    axis = next((a for k, a in axis.items() if k in param), 1)
    layer, bottom, top = build_layer('type: "Slice" ' + param, [x], n_top=n_top, xp=xp)
    ys = run_forward(layer, bottom, top)
    for y, lo, hi in zip(ys, bounds, bounds[1:]):
        np.testing.assert_array_equal(y, np.take(x, range(lo, hi), axis=axis))
    for t in top:  # blocks are copies: no top aliases the bottom
        assert not xp.shares_memory(t.data, bottom[0].data)


def test_slice_gradient(xp):
    layer, bottom, top = build_layer('type: "Slice" slice_param { slice_point: 1 }',
                                     [_x((2, 3, 2))], n_top=2, xp=xp)
    check_gradient(layer, bottom, top)


def test_slice_single_top_shares(xp):
    layer, bottom, top = build_layer('type: "Slice"', [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    assert top[0].data is bottom[0].data
    layer.backward(top, [True], bottom)
    assert bottom[0].diff is top[0].diff


@pytest.mark.parametrize("param, n_top, message", [
    ("slice_param { slice_point: 2 }", 3, "1 slice_point"),
    ("", 4, r"number of top blobs \(4\) should evenly divide input slice axis \(6\)"),
    ("slice_param { slice_point: 3 slice_point: 2 }", 3, "increasing"),
    ("slice_param { slice_point: 7 }", 2, "exceeds"),
    ("slice_param { axis: 1 slice_dim: 1 }", 2, "not both"),
    ("slice_param { slice_dim: 3 }", 2, "slice_dim 3 out of range"),
])
def test_slice_errors(xp, param, n_top, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "s" type: "Slice" ' + param, [_x((2, 6, 3))], n_top=n_top, xp=xp)
