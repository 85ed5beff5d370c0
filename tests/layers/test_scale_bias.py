"""Scale and Bias: closed forms, broadcast rules, learned and bottom operands, gradients,
in-place use, preloaded blobs, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _view(param, x_shape, axis):
    """The operand as it broadcasts against x when applied at ``axis``."""
    shape = (1,) * axis + param.shape + (1,) * (len(x_shape) - axis - param.ndim)
    return param.reshape(shape)


def _data(blob):
    return backend.to_numpy(blob.data)


# -- Bias -----------------------------------------------------------------------
@pytest.mark.parametrize("param, pshape, axis", [
    ("", (3,), 1),
    ("bias_param { axis: 1 num_axes: 2 }", (3, 4), 1),
    ("bias_param { num_axes: 0 }", (), 0),
    ("bias_param { axis: 2 num_axes: -1 }", (4, 2), 2),
    ("bias_param { axis: -1 }", (2,), 3),
    ("bias_param { axis: 0 num_axes: 4 }", (2, 3, 4, 2), 0),
])
def test_bias_learned(xp, param, pshape, axis):
    x = _x((2, 3, 4, 2))
    text = 'type: "Bias" %s' % param.replace("}", 'filler { type: "gaussian" } }') \
        if param else 'type: "Bias" bias_param { filler { type: "gaussian" } }'
    layer, bottom, top = build_layer(text, [x], xp=xp)
    assert len(layer.blobs) == 1 and layer.blobs[0].shape == pshape
    b = _data(layer.blobs[0])
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], x + _view(b, x.shape, axis))
    check_gradient(layer, bottom, top)


def test_bias_default_filler_is_zero(xp):
    layer, bottom, top = build_layer('type: "Bias"', [_x((2, 3))], xp=xp)
    assert not _data(layer.blobs[0]).any()


def test_bias_two_bottoms(xp):
    x, b = _x((2, 3, 4)), _x((3, 4), 1)
    layer, bottom, top = build_layer('type: "Bias"', [x, b], xp=xp)
    assert layer.blobs == []
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], x + b)
    check_gradient(layer, bottom, top)


def test_bias_param_diff_accumulates_and_can_be_frozen(xp):
    layer, bottom, top = build_layer('type: "Bias"', [_x((2, 3, 2))], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), [8, 8, 8])
    layer.param_propagate_down[0] = False
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), [8, 8, 8])


# -- Scale ----------------------------------------------------------------------
@pytest.mark.parametrize("param, pshape, axis", [
    ("", (3,), 1),
    ("num_axes: 2", (3, 4), 1),
    ("num_axes: 0", (), 0),
    ("axis: 2 num_axes: -1", (4, 2), 2),
    ("axis: -2", (4,), 2),
    ("axis: 0 num_axes: 4", (2, 3, 4, 2), 0),   # elementwise
])
@pytest.mark.parametrize("bias", [False, True])
def test_scale_learned(xp, param, pshape, axis, bias):
    x = _x((2, 3, 4, 2))
    text = ('type: "Scale" scale_param { %s filler { type: "gaussian" } bias_term: %s '
            'bias_filler { type: "gaussian" } }' % (param, str(bias).lower()))
    layer, bottom, top = build_layer(text, [x], xp=xp)
    assert [b.shape for b in layer.blobs] == [pshape] * (2 if bias else 1)
    want = x * _view(_data(layer.blobs[0]), x.shape, axis)
    if bias:
        want = want + _view(_data(layer.blobs[1]), x.shape, axis)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    check_gradient(layer, bottom, top)


def test_scale_default_filler_is_one(xp):
    x = _x((2, 3))
    layer, bottom, top = build_layer('type: "Scale" scale_param { bias_term: true }', [x], xp=xp)
    np.testing.assert_array_equal(_data(layer.blobs[0]), [1, 1, 1])
    np.testing.assert_array_equal(_data(layer.blobs[1]), [0, 0, 0])
    np.testing.assert_array_equal(run_forward(layer, bottom, top)[0], x)


@pytest.mark.parametrize("bias", [False, True])
def test_scale_two_bottoms(xp, bias):
    x, s = _x((2, 3, 4)), _x((3, 4), 1)
    text = 'type: "Scale" scale_param { bias_term: %s bias_filler { type: "gaussian" } }' \
        % str(bias).lower()
    layer, bottom, top = build_layer(text, [x, s], xp=xp)
    assert [b.shape for b in layer.blobs] == ([(3, 4)] if bias else [])
    want = x * s + (_data(layer.blobs[0]) if bias else 0)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    check_gradient(layer, bottom, top)


def test_scale_two_bottoms_scalar(xp):
    x, s = _x((2, 3)), np.array(1.5)
    layer, bottom, top = build_layer('type: "Scale" scale_param { axis: 1 }', [x, s], xp=xp)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], 1.5 * x)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("kind", ["Scale", "Bias"])
def test_in_place_matches_out_of_place(xp, kind):
    x = _x((2, 3, 4))
    extra = ' scale_param { bias_term: true filler { type: "gaussian" } ' \
        'bias_filler { type: "gaussian" } }' if kind == "Scale" \
        else ' bias_param { filler { type: "gaussian" } }'
    text = 'type: "%s"%s' % (kind, extra)
    ref, rb, rt = build_layer(text, [x], xp=xp)
    layer, bottom, _ = build_layer(text, [x], xp=xp)
    for p, q in zip(layer.blobs, ref.blobs):
        p.data[...] = q.data
    top = bottom  # in place
    want = run_forward(ref, rb, rt)[0]
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    dy = xp.asarray(_x((2, 3, 4), 1))
    for lay, b, t in ((ref, rb, rt), (layer, bottom, top)):
        t[0].diff[...] = dy
        for p in lay.blobs:
            p.diff[...] = 0
        lay.backward(t, [True], b)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), backend.to_numpy(rb[0].diff))
    for p, q in zip(layer.blobs, ref.blobs):
        np.testing.assert_allclose(backend.to_numpy(p.diff), backend.to_numpy(q.diff))


def test_scale_preloaded_blobs_are_kept(xp):
    text = ('type: "Scale" scale_param { bias_term: true } '
            'blobs { shape { dim: 3 } data: 1 data: 2 data: 3 } '
            'blobs { shape { dim: 3 } data: 4 data: 5 data: 6 }')
    x = _x((2, 3))
    layer, bottom, top = build_layer(text, [x], xp=xp)
    assert len(layer.blobs) == 2
    want = x * [1, 2, 3] + [4, 5, 6]
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    check_gradient(layer, bottom, top)  # the bias blob is the one updated


def test_scale_frozen_params_get_no_diff(xp):
    layer, bottom, top = build_layer('type: "Scale" scale_param { bias_term: true }',
                                     [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 1
    layer.param_propagate_down = [False, False]
    layer.backward(top, [True], bottom)
    assert not any(backend.to_numpy(p.diff).any() for p in layer.blobs)


@pytest.mark.parametrize("kind", ["Scale", "Bias"])
@pytest.mark.parametrize("param, shapes, message", [
    ("num_axes: -2", [(2, 3)], "num_axes must be non-negative"),
    ("axis: 1 num_axes: 3", [(2, 3, 4)], "extends past"),
    ("axis: 3", [(2, 3, 4)], "axis 3 out of range"),
    ("", [(2, 3, 4), (4,)], r"dimension mismatch between bottom\[0\]->shape\(1\) = 3"),
    ("axis: 2", [(2, 3, 4), (4, 2)], "extends past"),
])
def test_errors(xp, kind, param, shapes, message):
    field = "scale_param" if kind == "Scale" else "bias_param"
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "l" type: "%s" %s { %s }' % (kind, field, param),
                    [_x(s) for s in shapes], xp=xp)
