"""Crop and Tile: shapes, values against slicing / repetition, gradients, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _crop(params, x, ref, xp=np):
    return build_layer('name: "crop" type: "Crop" crop_param { %s }' % params, [x, ref],
                       xp=xp)


# -- Crop -----------------------------------------------------------------------
@pytest.mark.parametrize("params, xshape, rshape, index", [
    ("", (2, 3, 8, 8), (1, 1, 5, 4), np.s_[:, :, 0:5, 0:4]),  # default axis 2, offset 0
    ("axis: 2 offset: 1 offset: 2", (2, 3, 8, 8), (2, 3, 5, 4), np.s_[:, :, 1:6, 2:6]),
    ("axis: 1 offset: 1", (2, 4, 6, 6), (9, 2, 3, 4), np.s_[:, 1:3, 1:4, 1:5]),
    ("axis: -1 offset: 3", (2, 3, 7), (1, 1, 4), np.s_[:, :, 3:7]),
    ("axis: 0 offset: 1 offset: 0 offset: 2", (3, 2, 5), (2, 2, 3), np.s_[1:3, 0:2, 2:5]),
])
def test_crop_forward(xp, params, xshape, rshape, index):
    x = _x(xshape)
    layer, bottom, top = _crop(params, x, _x(rshape, 1), xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, x[index])


def test_crop_gradient_and_no_gradient_to_reference(xp):
    layer, bottom, top = _crop("axis: 1 offset: 1 offset: 0 offset: 2",
                               _x((2, 4, 3, 5)), _x((2, 2, 2, 3), 1), xp)
    check_gradient(layer, bottom, top, check_bottom=[0])
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)


def test_crop_backward_zeros_outside(xp):
    x = _x((1, 1, 4, 4))
    layer, bottom, top = _crop("offset: 1", x, _x((1, 1, 2, 2)), xp)
    run_forward(layer, bottom, top)
    bottom[0].diff[...] = 7.0  # stale values are overwritten
    top[0].diff[...] = xp.asarray([[[[1., 2.], [3., 4.]]]])
    layer.backward(top, [True, False], bottom)
    ref = np.zeros((1, 1, 4, 4))
    ref[0, 0, 1:3, 1:3] = [[1, 2], [3, 4]]
    np.testing.assert_array_equal(backend.to_numpy(bottom[0].diff), ref)


def test_crop_follows_a_new_reference_shape(xp):
    layer, bottom, top = _crop("offset: 1", _x((1, 1, 6, 6)), _x((1, 1, 2, 2)), xp)
    bottom[1].reshape(1, 1, 4, 3)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (1, 1, 4, 3)


@pytest.mark.parametrize("params, xshape, rshape, message", [
    ("axis: 1 offset: 1 offset: 2", (2, 3, 4, 4), (2, 2, 2, 2), "number of offset values"),
    ("offset: 3", (2, 3, 4, 4), (2, 3, 2, 2), "out-of-bounds"),
    ("axis: 2 offset: 0 offset: 3", (2, 3, 4, 4), (2, 3, 2, 2), "dimension 3"),
    ("axis: 4", (2, 3, 4, 4), (2, 3, 2, 2), "axis 4 out of range"),
    ("", (2, 3, 4, 4), (2, 3), "at least as many axes"),
])
def test_crop_errors(xp, params, xshape, rshape, message):
    with pytest.raises(LayerSetupError, match=message):
        _crop(params, _x(xshape), _x(rshape), xp)


# -- Tile -----------------------------------------------------------------------
@pytest.mark.parametrize("axis, tiles, shape", [(1, 3, (2, 3, 2, 2)), (2, 2, (2, 3, 4)),
                                                (0, 2, (2, 3)), (-1, 3, (2, 2, 3))])
def test_tile_forward(xp, axis, tiles, shape):
    x = _x(shape)
    layer, bottom, top = build_layer(
        'type: "Tile" tile_param { axis: %d tiles: %d }' % (axis, tiles), [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    reps = [1] * x.ndim
    reps[axis] = tiles
    # Caffe repeats the whole block of axes [axis, end): np.tile on that axis.
    np.testing.assert_array_equal(y, np.tile(x, reps))


def test_tile_gradient(xp):
    layer, bottom, top = build_layer('type: "Tile" tile_param { axis: 1 tiles: 3 }',
                                     [_x((2, 2, 3))], xp=xp)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("params, message", [
    ("", "tiles must be specified"),
    ("tile_param { tiles: 0 }", "must be positive"),
    ("tile_param { axis: 3 tiles: 2 }", "axis 3 out of range"),
])
def test_tile_errors(xp, params, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('type: "Tile" ' + params, [_x((2, 3, 4))], xp=xp)
