"""Split, Flatten, Reshape, Silence: shapes, shared memory, gradients, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _shares(a, b):
    return bool(backend.get_array_module(a).shares_memory(a, b))


# -- Split ----------------------------------------------------------------------
def test_split_shares_data_and_sums_diffs(xp):
    x = _x((2, 3, 4))
    layer, bottom, top = build_layer('type: "Split"', [x], n_top=3, xp=xp)
    run_forward(layer, bottom, top)
    for t in top:
        assert t.shape == (2, 3, 4) and t.data is bottom[0].data
    diffs = [_x((2, 3, 4), s) for s in (1, 2, 3)]
    for t, d in zip(top, diffs):
        t.diff[...] = xp.asarray(d)
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), sum(diffs))
    assert not _shares(bottom[0].diff, top[0].diff)


def test_split_gradient(xp):
    layer, bottom, top = build_layer('type: "Split"', [_x((2, 3))], n_top=2, xp=xp)
    check_gradient(layer, bottom, top)


def test_split_refuses_in_place(xp):
    layer, bottom, top = build_layer('type: "Split"', [_x((2, 3))], n_top=2, xp=xp)
    with pytest.raises(LayerSetupError, match="in-place"):
        layer.reshape(bottom, [top[0], bottom[0]])


# -- Flatten --------------------------------------------------------------------
@pytest.mark.parametrize("param, shape", [
    ("", (2, 60)),
    ("flatten_param { axis: 1 end_axis: 2 }", (2, 12, 5)),
    ("flatten_param { axis: 0 }", (120,)),
    ("flatten_param { axis: -2 }", (2, 3, 20)),
    ("flatten_param { axis: 2 end_axis: 1 }", (2, 3, 1, 4, 5)),  # empty range: a 1
])
def test_flatten_shapes(xp, param, shape):
    x = _x((2, 3, 4, 5))
    layer, bottom, top = build_layer('type: "Flatten" ' + param, [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    assert top[0].shape == shape
    np.testing.assert_array_equal(y, x.reshape(shape))


def test_flatten_shares_data_and_diff(xp):
    layer, bottom, top = build_layer('type: "Flatten"', [_x((2, 3, 2))], xp=xp)
    bottom[0].data = xp.asarray(_x((2, 3, 2), 5))  # a new array: re-shared at forward
    run_forward(layer, bottom, top)
    assert _shares(top[0].data, bottom[0].data)
    top[0].diff = xp.asarray(_x((2, 6), 6))
    layer.backward(top, [True], bottom)
    assert _shares(bottom[0].diff, top[0].diff)
    np.testing.assert_array_equal(backend.to_numpy(bottom[0].diff), _x((2, 6), 6).reshape(2, 3, 2))


def test_flatten_gradient(xp):
    layer, bottom, top = build_layer('type: "Flatten" flatten_param { axis: 1 end_axis: 2 }',
                                     [_x((2, 2, 3, 2))], xp=xp)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("param, message", [
    ("flatten_param { axis: 4 }", "axis 4 out of range"),
    ("flatten_param { end_axis: -5 }", "end_axis -5 out of range"),
    ("flatten_param { axis: 3 end_axis: 1 }", "must not precede"),
])
def test_flatten_bad_axes(xp, param, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "f" type: "Flatten" ' + param, [_x((2, 3, 4, 5))], xp=xp)


# -- Reshape --------------------------------------------------------------------
@pytest.mark.parametrize("param, shape", [
    ("shape { dim: 0 dim: -1 dim: 5 }", (2, 12, 5)),
    ("shape { dim: 12 } axis: 1 num_axes: 2", (2, 12, 5)),
    ("shape { dim: -1 }", (120,)),
    ("shape { dim: 0 dim: 0 dim: 0 dim: 0 }", (2, 3, 4, 5)),
    ("shape { dim: 1 } axis: -1", (2, 3, 4, 5, 1)),          # after the last axis
    ("shape { dim: 5 dim: 1 } axis: -2", (2, 3, 4, 5, 1)),   # replaces the last axis
    ("shape { dim: 1 dim: -1 } axis: 1 num_axes: 0", (2, 1, 1, 3, 4, 5)),
    ("shape { dim: -1 dim: 2 } axis: 0 num_axes: 1", (1, 2, 3, 4, 5)),
])
def test_reshape_shapes(xp, param, shape):
    x = _x((2, 3, 4, 5))
    layer, bottom, top = build_layer('type: "Reshape" reshape_param { %s }' % param, [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    assert top[0].shape == shape
    np.testing.assert_array_equal(y, x.reshape(shape))


def test_reshape_shares_and_follows_new_shapes(xp):
    layer, bottom, top = build_layer(
        'type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }', [_x((2, 3, 4))], xp=xp)
    bottom[0].reshape(4, 3, 2)
    bottom[0].data = xp.asarray(_x((4, 3, 2), 1))
    (y,) = run_forward(layer, bottom, top)
    assert top[0].shape == (4, 6) and _shares(top[0].data, bottom[0].data)
    np.testing.assert_array_equal(y, _x((4, 3, 2), 1).reshape(4, 6))
    layer.backward(top, [True], bottom)
    assert _shares(bottom[0].diff, top[0].diff)


def test_reshape_gradient(xp):
    layer, bottom, top = build_layer(
        'type: "Reshape" reshape_param { shape { dim: -1 dim: 2 } }', [_x((2, 3, 2))], xp=xp)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("param, message", [
    ("shape { dim: -1 dim: -1 }", "multiple -1"),
    ("shape { dim: 7 dim: -1 }", "divisible"),
    ("shape { dim: 7 dim: 3 }", "output count must match"),
    ("shape { dim: 0 dim: 0 dim: 0 dim: 0 dim: 0 }", "no corresponding bottom axis"),
    ("shape { dim: -2 dim: 3 }", "below -1"),
    ("shape { dim: 2 } axis: 5", "axis 5 out of range"),
    ("shape { dim: 2 } axis: 1 num_axes: 4", "out of range"),
    ("shape { dim: 2 } num_axes: -2", "num_axes"),
])
def test_reshape_bad_parameters(xp, param, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "r" type: "Reshape" reshape_param { %s }' % param,
                    [_x((2, 3, 4, 5))], xp=xp)


def test_reshape_refuses_in_place(xp):
    layer, bottom, top = build_layer('type: "Reshape" reshape_param { shape { dim: -1 } }',
                                     [_x((2, 3))], xp=xp)
    with pytest.raises(LayerSetupError, match="in-place"):
        layer.reshape(bottom, bottom)


# -- Silence --------------------------------------------------------------------
def test_silence_zeroes_the_diffs_it_is_asked_for(xp):
    layer, bottom, top = build_layer('type: "Silence"', [_x((2, 3)), _x((4,))], n_top=0, xp=xp)
    assert top == []
    run_forward(layer, bottom, top)
    for b in bottom:
        b.diff[...] = 7
    layer.backward(top, [True, False], bottom)
    assert not backend.to_numpy(bottom[0].diff).any()
    assert (backend.to_numpy(bottom[1].diff) == 7).all()


def test_silence_takes_no_tops(xp):
    with pytest.raises(LayerSetupError, match="0 top"):
        build_layer('type: "Silence"', [_x((2,))], n_top=1, xp=xp)
