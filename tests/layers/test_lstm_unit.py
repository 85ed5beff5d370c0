"""LSTMUnit: forward against the gate formulas, gradients, cont, shape errors.
Caffe's own numbers (through LSTM): tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError

UNIT = 'name: "unit" type: "LSTMUnit"'


def _inputs(n=3, d=2, cont=(0, 1, 1), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, n, d)), rng.standard_normal((1, n, 4 * d)),
            np.asarray(cont, np.float64).reshape(1, n)]


def _reference(c_prev, x, cont):
    d = c_prev.shape[-1]
    s = lambda v: 1 / (1 + np.exp(-v))
    i, f, o = s(x[..., :d]), s(x[..., d:2 * d]), s(x[..., 2 * d:3 * d])
    g = np.tanh(x[..., 3 * d:])
    c = cont[..., None] * f * c_prev + i * g
    return c, o * np.tanh(c)


@pytest.mark.parametrize("cont", [(0, 1, 1), (1, 1, 1), (0, 0, 0), (0.5, 1, 2)])
def test_forward_closed_form(xp, cont):
    bottoms = _inputs(cont=cont)
    layer, bottom, top = build_layer(UNIT, bottoms, n_top=2, xp=xp)
    c, h = run_forward(layer, bottom, top)
    c_ref, h_ref = _reference(*bottoms)
    assert c.shape == h.shape == (1, 3, 2)
    np.testing.assert_allclose(c, c_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-14)


def test_cont_zero_flushes_even_huge_cell(xp):
    c_prev, x, _ = _inputs(n=2, cont=(0, 0))
    c_prev[...] = 1e30
    layer, bottom, top = build_layer(UNIT, [c_prev, x, np.zeros((1, 2))], n_top=2, xp=xp)
    c, _ = run_forward(layer, bottom, top)
    np.testing.assert_allclose(c, _reference(np.zeros_like(c_prev), x, np.zeros((1, 2)))[0])


@pytest.mark.parametrize("cont", [(0, 1, 1), (0.5, 1, 0.25)])
def test_gradient(xp, cont):
    layer, bottom, top = build_layer(UNIT, _inputs(cont=cont, seed=1), n_top=2, xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[0, 1])


def test_no_gradient_to_cont(xp):
    layer, bottom, top = build_layer(UNIT, _inputs(), n_top=2, xp=xp)
    assert layer.allow_force_backward(0) and layer.allow_force_backward(1)
    assert not layer.allow_force_backward(2)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 1
    top[1].diff[...] = 1
    layer.backward(top, [True, True, False], bottom)
    assert float(abs(backend.to_numpy(bottom[2].diff)).max()) == 0


@pytest.mark.parametrize("shapes,match", [
    (((1, 3, 2), (1, 3, 6), (1, 3)), "4 \\* D = 8"),
    (((1, 3, 2), (1, 2, 8), (1, 3)), "bottom 1 must have 3 axes"),
    (((2, 3, 2), (2, 3, 8), (2, 3)), "bottom 0 must have 3 axes"),
    (((1, 3, 2), (1, 3, 8), (1, 3, 1)), "bottom 2 must have 2 axes"),
])
def test_bad_shapes(shapes, match):
    with pytest.raises(LayerSetupError, match=match):
        build_layer(UNIT, [np.zeros(s) for s in shapes], n_top=2)


def test_blob_counts():
    with pytest.raises(LayerSetupError, match="produces 2 top"):
        build_layer(UNIT, _inputs(), n_top=1)
