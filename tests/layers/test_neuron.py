"""ReLU, Sigmoid, TanH: closed forms, gradients, in-place use.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward, run_in_place
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError


def _input(shape=(2, 3, 4, 5), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _relu(slope):
    return lambda x: np.where(x > 0, x, slope * x)


CASES = {
    'type: "ReLU"': _relu(0.0),
    'type: "ReLU" relu_param { negative_slope: 0.1 }': _relu(float(np.float32(0.1))),  # the proto field is a float
    'type: "Sigmoid"': lambda x: 1 / (1 + np.exp(-x)),
    'type: "TanH"': np.tanh,
}


@pytest.mark.parametrize("text", list(CASES))
def test_forward_closed_form(text, xp):
    x = _input()
    layer, bottom, top = build_layer(text, [x], xp=xp)
    y, = run_forward(layer, bottom, top)
    assert top[0].shape == x.shape and top[0].dtype == np.float64
    np.testing.assert_allclose(y, CASES[text](x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("text", list(CASES))
def test_gradient(text, xp):
    layer, bottom, top = build_layer(text, [_input((2, 3, 2, 2))], xp=xp)
    if "ReLU" in text:
        check_gradient(layer, bottom, top, kink=0.0, kink_range=0.01)
    else:
        check_gradient(layer, bottom, top)


@pytest.mark.parametrize("text", list(CASES))
def test_in_place_matches_out_of_place(text, xp):
    x = _input((3, 4))
    dy = _input((3, 4), seed=1)
    layer, bottom, top = build_layer(text, [x], xp=xp)
    y = run_forward(layer, bottom, top)[0]
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    dx = backend.to_numpy(bottom[0].diff).copy()

    _, y_in_place, blob = run_in_place(text, x, dy, xp)
    np.testing.assert_allclose(y_in_place, y, rtol=1e-14)
    np.testing.assert_allclose(backend.to_numpy(blob.diff), dx, rtol=1e-12, atol=1e-15)


def test_relu_backward_known_values(xp):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    layer, bottom, top = build_layer('type: "ReLU" relu_param { negative_slope: 0.25 }',
                                     [x], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 2.0
    layer.backward(top, [True], bottom)
    # Caffe: (x > 0) + slope * (x <= 0); x = 0 takes the slope
    np.testing.assert_array_equal(backend.to_numpy(bottom[0].diff),
                                  [0.5, 0.5, 0.5, 2.0, 2.0])


def test_no_propagate_leaves_diff(xp):
    layer, bottom, top = build_layer('type: "TanH"', [_input((2, 2))], xp=xp)
    run_forward(layer, bottom, top)
    bottom[0].diff[...] = 7.0
    layer.backward(top, [False], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 7.0).all()


def test_reshape_follows_bottom(xp):
    layer, bottom, top = build_layer('type: "Sigmoid"', [_input((2, 3))], xp=xp)
    bottom[0].reshape((4, 1, 5))
    run_forward(layer, bottom, top)
    assert top[0].shape == (4, 1, 5)


def test_float32_kept(xp):
    layer, bottom, top = build_layer('type: "ReLU" relu_param { negative_slope: 0.1 }',
                                     [_input((2, 3))], xp=xp, dtype=np.float32)
    y, = run_forward(layer, bottom, top)
    assert y.dtype == np.float32 and top[0].diff.dtype == np.float32


@pytest.mark.parametrize("n_bottom,n_top", [(2, 1), (1, 2)])
def test_blob_counts(n_bottom, n_top):
    with pytest.raises(LayerSetupError, match="ReLU"):
        build_layer('name: "r" type: "ReLU"', [_input((2,))] * n_bottom, n_top=n_top)
