"""ReLU's oneDNN engine (cpu/onednn_eltwise, layers/_relu_onednn) against the
layer's own NumPy path (engine: CAFFE): the same float32 values, bit for bit,
zeros included, in place and not."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn, onednn_eltwise
from test_onednn_pool import compiled_kernels_here

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")


def _values(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::7] = 0.0          # x == 0: dx = slope * dy, as Caffe
    return x


def _pass(engine, slope, x, dy, in_place):
    text = 'type: "ReLU" relu_param { negative_slope: %r %s }' % (slope, engine)
    layer, bottom, top = build_layer(text, [x], dtype=np.float32)
    if in_place:
        top = bottom
        layer.reshape(bottom, top)
    layer.forward(bottom, top)
    y = np.array(top[0].data)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    return y, np.array(bottom[0].diff)


@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (2, 17, 4, 4), (4, 16, 8, 8), (3, 5)])
@pytest.mark.parametrize("slope", [0.0, 0.1, 1.5])
@pytest.mark.parametrize("in_place", [False, True])
def test_matches_the_numpy_path_exactly(shape, slope, in_place):
    x, dy = _values(shape, 1), _values(shape, 2)
    y_ref, dx_ref = _pass("engine: CAFFE", slope, x, dy, in_place)
    y, dx = _pass("", slope, x, dy, in_place)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)
    if compiled_kernels_here():
        assert onednn_eltwise.plan(x.size, slope) is not None


def test_engine_caffe_and_float64_keep_the_numpy_path(monkeypatch):
    """engine: CAFFE and float64 never ask for a plan."""
    asked = []
    monkeypatch.setattr(onednn_eltwise, "plan", lambda *a: asked.append(a))
    x = _values((2, 3, 4, 4), 3)
    _pass("engine: CAFFE", 0.0, x, x, False)
    layer, bottom, top = build_layer('type: "ReLU"', [x.astype(np.float64)])
    layer.forward(bottom, top)
    assert asked == []
    _pass("", 0.0, x, x, False)
    assert len(asked) == 2


def test_off_switch_takes_the_numpy_path(monkeypatch):
    monkeypatch.setenv("LOWBIT_ONEDNN", "0")
    x, dy = _values((2, 5, 3, 3), 4), _values((2, 5, 3, 3), 5)
    y, dx = _pass("", 0.2, x, dy, True)
    np.testing.assert_array_equal(y, np.where(x > 0, x, np.float32(0.2) * x))
    np.testing.assert_array_equal(dx, np.where(y > 0, dy, np.float32(0.2) * dy))
