"""PReLU, ELU, AbsVal, BNLL, Power, Exp, Log, Threshold, Clip, Swish: closed forms,
gradients, Caffe's special cases, in-place use, bad parameters.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import (build_layer, check_gradient, layer_param, make_blobs, run_forward,
                     run_in_place)
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError, create_layer


def _input(shape=(2, 3, 4, 5), seed=0, low=None):
    x = np.random.default_rng(seed).standard_normal(shape)
    if low is not None:          # positive inputs for Log / fractional powers
        x = np.abs(x) + low
    return x


def _away(x, points, gap=0.05):
    """Move entries within ``gap`` of any kink in ``points`` away from it."""
    for p in points:
        near = np.abs(x - p) < gap
        x = np.where(near, p + np.where(x >= p, gap, -gap) * 2, x)
    return x


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _f32(v):
    return float(np.float32(v))  # the proto fields are floats


# text -> (closed-form forward, input maker, kinks)
CASES = {
    'type: "ELU"': (lambda x: np.where(x > 0, x, np.expm1(x)), _input, [0.0]),
    'type: "ELU" elu_param { alpha: 0.7 }':
        (lambda x: np.where(x > 0, x, _f32(0.7) * np.expm1(x)), _input, [0.0]),
    'type: "AbsVal"': (np.abs, _input, [0.0]),
    'type: "BNLL"': (lambda x: np.log1p(np.exp(x)), _input, []),
    'type: "Power" power_param { power: 2 scale: 0.5 shift: 1 }':
        (lambda x: (1 + 0.5 * x) ** 2, _input, []),
    'type: "Power" power_param { power: 0.5 scale: 2 shift: 0.1 }':
        (lambda x: (_f32(0.1) + 2 * x) ** 0.5, lambda s: _input(s, low=0.2), []),
    'type: "Power" power_param { power: 3 scale: -1.5 }':
        (lambda x: (-1.5 * x) ** 3, _input, []),
    'type: "Power" power_param { power: -1.5 scale: 0.5 shift: 0.25 }':
        (lambda x: (0.25 + 0.5 * x) ** -1.5, lambda s: _input(s, low=0.2), []),
    'type: "Power" power_param { scale: 3 shift: -1 }': (lambda x: 3 * x - 1, _input, []),
    'type: "Exp"': (np.exp, _input, []),
    'type: "Exp" exp_param { base: 2 scale: 0.5 shift: 0.1 }':
        (lambda x: 2.0 ** (_f32(0.1) + 0.5 * x), _input, []),
    'type: "Exp" exp_param { shift: 0.5 }': (lambda x: np.exp(0.5 + x), _input, []),
    'type: "Log"': (np.log, lambda s: _input(s, low=0.2), []),
    'type: "Log" log_param { base: 10 scale: 2 shift: 0.5 }':
        (lambda x: np.log10(0.5 + 2 * x), lambda s: _input(s, low=0.2), []),
    'type: "Clip" clip_param { min: -0.5 max: 0.7 }':
        (lambda x: np.clip(x, -0.5, _f32(0.7)), _input, [-0.5, _f32(0.7)]),
    'type: "Swish"': (lambda x: x * _sigmoid(x), _input, []),
    'type: "Swish" swish_param { beta: 1.5 }': (lambda x: x * _sigmoid(1.5 * x), _input, []),
    'type: "PReLU"': (lambda x: np.where(x > 0, x, 0.25 * x), _input, [0.0]),
    'type: "PReLU" prelu_param { channel_shared: true }':
        (lambda x: np.where(x > 0, x, 0.25 * x), _input, [0.0]),
}


def _make(text, shape):
    _, maker, kinks = CASES[text]
    return _away(maker(shape), kinks)


@pytest.mark.parametrize("text", list(CASES))
def test_forward_closed_form(text, xp):
    x = _make(text, (2, 3, 4, 5))
    layer, bottom, top = build_layer(text, [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    assert top[0].shape == x.shape and top[0].dtype == np.float64
    np.testing.assert_allclose(y, CASES[text][0](x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("text", list(CASES))
def test_gradient(text, xp):
    layer, bottom, top = build_layer(text, [_make(text, (2, 3, 2, 2))], xp=xp)
    check_gradient(layer, bottom, top)


def test_threshold_forward(xp):
    x = np.array([[-1.0, 0.3, 0.30001, 2.0]])
    layer, bottom, top = build_layer('type: "Threshold" threshold_param { threshold: 0.3 }',
                                     [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    t = _f32(0.3)
    np.testing.assert_array_equal(y, (x > t).astype(np.float64))
    assert y[0, 1] == (0.3 > t)                  # x == threshold (as float32): 0
    with pytest.raises(NotImplementedError, match="Threshold"):
        layer.backward(top, [True], bottom)
    layer.backward(top, [False], bottom)         # nothing asked: no error


def _backward(layer, bottom, top, dy, xp):
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    return backend.to_numpy(bottom[0].diff).copy()


def test_absval_sign_at_zero(xp):
    layer, bottom, top = build_layer('type: "AbsVal"', [np.array([-2.0, 0.0, 3.0])], xp=xp)
    run_forward(layer, bottom, top)
    np.testing.assert_array_equal(_backward(layer, bottom, top, [5.0, 5.0, 5.0], xp),
                                  [-5.0, 0.0, 5.0])


def test_bnll_large_inputs(xp):
    x = np.array([-800.0, -60.0, 0.0, 60.0, 800.0])
    layer, bottom, top = build_layer('type: "BNLL"', [x], xp=xp)
    with np.errstate(over="raise", invalid="raise"):
        y, = run_forward(layer, bottom, top)
        dx = _backward(layer, bottom, top, np.ones(5), xp)
    np.testing.assert_allclose(y, [0.0, np.exp(-60.0), np.log(2.0), 60.0, 800.0], rtol=1e-12)
    # Caffe clamps x at 50 in backward: e / (e + 1) with e = exp(min(x, 50))
    e50 = np.exp(50.0)
    np.testing.assert_allclose(dx, [0.0, _sigmoid(-60.0), 0.5, e50 / (e50 + 1), e50 / (e50 + 1)],
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("text,value", [
    ('power_param { power: 0 scale: 2 shift: 3 }', 1.0),       # power 0: the constant 1
    ('power_param { power: 2 scale: 0 shift: 3 }', 9.0),       # scale 0: shift^power
    ('power_param { power: 0 scale: 0 shift: 0 }', 1.0),
])
def test_power_constant_cases(text, value, xp):
    x = _input((2, 3))
    layer, bottom, top = build_layer('type: "Power" ' + text, [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, np.full(x.shape, value))
    dx = _backward(layer, bottom, top, np.full(x.shape, np.inf), xp)
    np.testing.assert_array_equal(dx, 0.0)                     # Caffe sets 0, ignores dy


def test_power_one_is_affine(xp):
    x = _input((2, 3))
    dy = _input((2, 3), seed=1)
    layer, bottom, top = build_layer('type: "Power" power_param { scale: -2 shift: 0.5 }',
                                     [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, 0.5 - 2 * x, rtol=1e-14)
    np.testing.assert_allclose(_backward(layer, bottom, top, dy, xp), -2 * dy, rtol=1e-14)


def test_exp_base_one_is_constant(xp):
    x = _input((2, 3))
    layer, bottom, top = build_layer('type: "Exp" exp_param { base: 1 shift: 2 }', [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, 1.0)
    np.testing.assert_array_equal(_backward(layer, bottom, top, np.ones((2, 3)), xp), 0.0)


def test_swish_beta_zero_is_half(xp):
    x = _input((2, 3))
    layer, bottom, top = build_layer('type: "Swish" swish_param { beta: 0 }', [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, x / 2, rtol=1e-14)


def test_clip_boundaries_and_nan(xp):
    x = np.array([-1.0, -0.5, 0.0, 0.75, 1.0, np.nan])
    layer, bottom, top = build_layer('type: "Clip" clip_param { min: -0.5 max: 0.75 }',
                                     [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, [-0.5, -0.5, 0.0, 0.75, 0.75, -0.5])  # NaN -> min
    dx = _backward(layer, bottom, top, np.full(6, 2.0), xp)
    np.testing.assert_array_equal(dx, [0.0, 2.0, 2.0, 2.0, 0.0, 0.0])     # min <= x <= max


# -- PReLU: the slope blob ------------------------------------------------------

def test_prelu_blob_shapes_and_default_filler(xp):
    layer, _, _ = build_layer('type: "PReLU"', [_input((2, 3, 4))], xp=xp)
    assert layer.blobs[0].shape == (3,)
    np.testing.assert_array_equal(backend.to_numpy(layer.blobs[0].data), 0.25)
    layer, _, _ = build_layer('type: "PReLU" prelu_param { channel_shared: true }',
                              [_input((2, 3, 4))], xp=xp)
    assert layer.blobs[0].shape == ()
    layer, _, _ = build_layer(
        'type: "PReLU" prelu_param { filler { type: "constant" value: -0.5 } }',
        [_input((2, 4))], xp=xp)
    np.testing.assert_array_equal(backend.to_numpy(layer.blobs[0].data), [-0.5] * 4)


@pytest.mark.parametrize("shared", [False, True])
def test_prelu_forward_per_channel_and_gradient(shared, xp):
    text = 'type: "PReLU" prelu_param { channel_shared: %s }' % str(shared).lower()
    x = _away(_input((2, 3, 2, 2)), [0.0])
    layer, bottom, top = build_layer(text, [x], xp=xp)
    slopes = np.array(0.3) if shared else np.array([0.1, -0.2, 0.7])
    layer.blobs[0].data[...] = xp.asarray(slopes)
    y, = run_forward(layer, bottom, top)
    a = slopes if shared else slopes.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(y, np.where(x > 0, x, a * x), rtol=1e-14)
    check_gradient(layer, bottom, top)


def test_prelu_param_diff_accumulates_and_respects_propagate(xp):
    x = _away(_input((2, 3, 2)), [0.0])
    dy = _input((2, 3, 2), seed=1)
    layer, bottom, top = build_layer('type: "PReLU"', [x], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    once = backend.to_numpy(layer.blobs[0].diff).copy()
    np.testing.assert_allclose(once, (dy * x * (x <= 0)).sum(axis=(0, 2)), rtol=1e-12)
    layer.backward(top, [False], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), 2 * once, rtol=1e-12)
    layer.param_propagate_down[0] = False
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), 2 * once, rtol=1e-12)


def test_prelu_preloaded_legacy_shape(xp):
    """A slope blob from a caffemodel only needs the right count (e.g. 1x1x1xC)."""
    param = layer_param('name: "p" type: "PReLU"')
    layer = create_layer(param, dtype=np.float64)
    layer.blobs = make_blobs([np.array([0.5, -1.0, 2.0]).reshape(1, 1, 1, 3)], xp)
    x = _away(_input((2, 3, 2)), [0.0])
    bottom = make_blobs([x], xp)
    top = make_blobs([np.zeros(1)], xp)
    layer.setup(bottom, top)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, np.where(x > 0, x, np.array([0.5, -1.0, 2.0])[:, None] * x))
    check_gradient(layer, bottom, top)


# -- in place ---------------------------------------------------------------------

EXACT_IN_PLACE = ['type: "ELU" elu_param { alpha: 0.7 }',
                  'type: "Exp" exp_param { base: 2 scale: 0.5 shift: 0.1 }',
                  'type: "Swish" swish_param { beta: 1.5 }', 'type: "PReLU"',
                  'type: "PReLU" prelu_param { channel_shared: true }']


@pytest.mark.parametrize("text", EXACT_IN_PLACE)
def test_in_place_matches_out_of_place(text, xp):
    x = _make(text, (2, 3, 4))
    dy = _input((2, 3, 4), seed=1)
    layer, bottom, top = build_layer(text, [x], xp=xp)
    y = run_forward(layer, bottom, top)[0]
    dx = _backward(layer, bottom, top, dy, xp)
    pdiff = [backend.to_numpy(p.diff).copy() for p in layer.blobs]

    layer, y_in_place, blob = run_in_place(text, x, dy, xp)
    np.testing.assert_allclose(y_in_place, y, rtol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(blob.diff), dx, rtol=1e-12, atol=1e-15)
    for p, want in zip(layer.blobs, pdiff):
        np.testing.assert_allclose(backend.to_numpy(p.diff), want, rtol=1e-12)


def test_clip_in_place_reads_top_as_caffe(xp):
    """Caffe's Clip backward reads the bottom data, which in place is the clipped y,
    so every gradient passes; we do the same."""
    text = 'type: "Clip" clip_param { min: -0.5 max: 0.5 }'
    layer = create_layer(layer_param(text), dtype=np.float64)
    blob, = make_blobs([np.array([-2.0, 0.1, 2.0])], xp)
    layer.setup([blob], [blob])
    layer.forward([blob], [blob])
    blob.diff[...] = 3.0
    layer.backward([blob], [True], [blob])
    np.testing.assert_array_equal(backend.to_numpy(blob.diff), 3.0)


# -- dtype, propagate_down, bad parameters -----------------------------------------

@pytest.mark.parametrize("text", list(CASES))
def test_float32_kept(text, xp):
    layer, bottom, top = build_layer(text, [_make(text, (2, 3))], xp=xp, dtype=np.float32)
    y, = run_forward(layer, bottom, top)
    dx = _backward(layer, bottom, top, np.ones((2, 3)), xp)
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(p.data.dtype == np.float32 for p in layer.blobs)


@pytest.mark.parametrize("text", list(CASES))
def test_no_propagate_leaves_diff(text, xp):
    layer, bottom, top = build_layer(text, [_make(text, (2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    bottom[0].diff[...] = 7.0
    top[0].diff[...] = 1.0
    layer.backward(top, [False], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 7.0).all()


@pytest.mark.parametrize("text,bottoms,match", [
    ('type: "Exp" exp_param { base: 0 }', [(2, 3)], "strictly positive"),
    ('type: "Exp" exp_param { base: -2 }', [(2, 3)], "strictly positive"),
    ('type: "Log" log_param { base: -0.5 }', [(2, 3)], "strictly positive"),
    ('type: "Log" log_param { base: 1 }', [(2, 3)], "base 1"),
    ('type: "Clip"', [(2, 3)], "clip_param"),
    ('type: "Clip" clip_param { min: -1 }', [(2, 3)], "clip_param"),
    ('type: "PReLU"', [(5,)], "at least 2 axes"),
    ('type: "ELU"', [(2, 3), (2, 3)], "bottom"),
])
def test_bad_parameters(text, bottoms, match):
    with pytest.raises(LayerSetupError, match=match):
        build_layer('name: "bad" ' + text, [_input(s) for s in bottoms])


def test_prelu_wrong_slope_count():
    layer = create_layer(layer_param('name: "p" type: "PReLU"'), dtype=np.float64)
    layer.blobs = make_blobs([np.ones(4)])
    bottom = make_blobs([_input((2, 3, 2))])
    with pytest.raises(LayerSetupError, match="slope blob has 4 values, expected 3"):
        layer.setup(bottom, make_blobs([np.zeros(1)]))


def test_absval_in_place_refused():
    layer = create_layer(layer_param('name: "a" type: "AbsVal"'), dtype=np.float64)
    blob, = make_blobs([_input((2, 3))])
    with pytest.raises(LayerSetupError, match="in-place"):
        layer.setup([blob], [blob])
