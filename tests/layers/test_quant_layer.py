"""Quant (HWGQ fork): forward and backward against closed forms for each
forward_func / backward_func, in place, and bad parameters.
The fork's own numbers: tests/golden/test_golden_hwgq.py."""
import numpy as np
import pytest

from support.helpers import build_layer, captured_log, run_forward, run_in_place
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError

F32 = np.float32
C3NE = "centers: 0.538 centers: 1.076 centers: 1.614"


def _text(params):
    return 'name: "qt" type: "Quant" quant_param { %s }' % params


def _x(shape=(2, 3, 4, 5), seed=0):
    return (2 * np.random.default_rng(seed).standard_normal(shape)).astype(F32)


def _hwgq(x):
    t1, t2 = (F32(0.538) + F32(1.076)) / 2, (F32(1.076) + F32(1.614)) / 2
    return np.select([x <= 0, x <= t1, x <= t2], [-0.0, F32(0.538), F32(1.076)], F32(1.614))


CASES = {   # quant_param -> (forward y(x), backward dx(x, dy))
    "forward_func: 'hwgq' backward_func: 'relu' clip_thr: 1.614 " + C3NE:
        (_hwgq, lambda x, dy: dy * (x > 0) * (x <= F32(1.614))),
    C3NE:   # the defaults: hwgq, relu backward, no clip
        (_hwgq, lambda x, dy: dy * (x > 0)),
    "forward_func: 'sign' backward_func: 'hard_tanh' clip_thr: 1":
        (lambda x: np.where(x >= 0, 1, -1), lambda x, dy: dy * (np.abs(x) <= 1)),
    "forward_func: 'hard_tanh'":
        (lambda x: np.clip(x, -1, 1), lambda x, dy: dy * (x > 0)),
    "forward_func: 'relu' negative_slope: 0.1 clip_thr: 2":
        (lambda x: np.where(x > 0, x, x * F32(0.1)),
         lambda x, dy: np.where(x > 0, dy, dy * F32(0.1)) * (x <= 2)),
}


@pytest.mark.parametrize("params", list(CASES))
def test_closed_form(xp, params):
    x, dy = _x(), _x(seed=1)
    fwd, bwd = CASES[params]
    layer, bottom, top = build_layer(_text(params), [x], xp=xp, dtype=F32)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, fwd(x).astype(F32))
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    np.testing.assert_array_equal(backend.to_numpy(bottom[0].diff), bwd(x, dy).astype(F32))


@pytest.mark.parametrize("params", list(CASES))
def test_in_place_matches_out_of_place(xp, params):
    """In place the input is overwritten by y; the gradient still uses x."""
    x, dy = _x((3, 7)), _x((3, 7), seed=1)
    fwd, bwd = CASES[params]
    _, y, blob = run_in_place(_text(params), x, dy, xp=xp)
    np.testing.assert_array_equal(y, fwd(x.astype(np.float64)))
    np.testing.assert_allclose(backend.to_numpy(blob.diff), bwd(x, dy), rtol=1e-6)


def test_thrs_are_ignored_with_a_warning(xp):
    x = _x()
    with captured_log() as log:
        layer, bottom, top = build_layer(_text(C3NE + " thrs: 0.1 thrs: 0.2"), [x], xp=xp,
                                         dtype=F32)
    y, = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, _hwgq(x))
    assert "thrs is ignored" in log.text


@pytest.mark.parametrize("params, message", [
    ("forward_func: 'round'", "forward_func 'round' is not one of hwgq, sign"),
    ("backward_func: 'ste' " + C3NE, "backward_func 'ste' is not one of relu, hard_tanh"),
    ("forward_func: 'hwgq'", "at least one center"),
    ("centers: 1.0 centers: 0.5", "positive and increasing"),
])
def test_bad_parameters_name_the_layer(params, message):
    with pytest.raises(LayerSetupError, match="layer 'qt' \\(type Quant\\).*" + message):
        build_layer(_text(params), [_x()])
