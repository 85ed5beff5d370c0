"""Input and DummyData: shapes, fillers, refill rule, bad parameters, and what
tests/golden/test_golden_layers.py leaves out of Caffe's DummyData case (exact constant top)."""
import numpy as np
import pytest

from support import golden
from support.helpers import build_layer, layer_param, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.layers import LayerSetupError, create_layer


def _build(text, n_top, xp=np, dtype=np.float64):
    layer, _, top = build_layer(text, [], n_top=n_top, xp=xp, dtype=dtype)
    return layer, top


# -- Input -------------------------------------------------------------------

def test_input_one_shape_for_all_tops(xp):
    layer, top = _build('type: "Input" input_param { shape { dim: 2 dim: 3 } }', 2, xp)
    assert [t.shape for t in top] == [(2, 3), (2, 3)]


def test_input_shape_per_top_and_forward_keeps_data(xp):
    layer, top = _build('type: "Input" input_param { shape { dim: 4 } shape { dim: 1 dim: 2 '
                        'dim: 3 dim: 3 } }', 2, xp)
    assert [t.shape for t in top] == [(4,), (1, 2, 3, 3)]
    top[0].data[...] = xp.asarray([1.0, 2.0, 3.0, 4.0])
    run_forward(layer, [], top)
    layer.backward(top, [], [])
    np.testing.assert_array_equal(backend.to_numpy(top[0].data), [1, 2, 3, 4])


def test_input_without_shape_leaves_tops(xp):
    layer = create_layer(layer_param('type: "Input"'), dtype=np.float64)
    top = [Blob((5, 2), np.float64, xp)]
    layer.setup([], top)
    assert top[0].shape == (5, 2)


def test_input_shape_count_mismatch():
    with pytest.raises(LayerSetupError, match="3 tops vs. 2 shapes"):
        _build('name: "in" type: "Input" input_param { shape { dim: 1 } shape { dim: 2 } }', 3)


def test_input_takes_no_bottom():
    with pytest.raises(LayerSetupError, match="0 bottom"):
        build_layer('type: "Input" input_param { shape { dim: 1 } }', [np.zeros(1)])


def test_input_negative_dim():
    with pytest.raises(LayerSetupError, match="negative"):
        _build('type: "Input" input_param { shape { dim: 2 dim: -1 } }', 1)


# -- DummyData ---------------------------------------------------------------

def test_dummydata_golden(xp):
    """Beyond tests/golden/test_golden_layers.py (1e-4, shapes only for random tops): the
    constant top is exact, and the random tops are float32 draws of their fillers."""
    net = golden.run_case(golden.case_path("layers", "dummydata"))
    d = np.load(golden.case_path("layers", "dummydata"))
    out = {name: backend.to_numpy(net.blob_by_name(name).data) for name in ("c", "g", "u")}
    for name in ("c", "g", "u"):
        assert out[name].shape == d["out__" + name].shape
        assert out[name].dtype == np.float32
    np.testing.assert_array_equal(out["c"], d["out__c"])  # constant 1.5
    assert out["g"].std() > 0.5 and np.abs(out["g"]).max() < 20  # gaussian std 2
    assert ((out["u"] >= -1) & (out["u"] < 3)).all() and np.ptp(out["u"]) > 0


def test_dummydata_default_is_constant_zero(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { shape { dim: 2 dim: 3 } }', 2, xp)
    assert [t.shape for t in top] == [(2, 3), (2, 3)]
    assert not any(backend.to_numpy(t.data).any() for t in top)
    assert layer.refill == [False]


def test_dummydata_constant_filled_once_at_setup(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { shape { dim: 3 } '
                        'data_filler { type: "constant" value: 2 } }', 1, xp)
    np.testing.assert_array_equal(backend.to_numpy(top[0].data), [2, 2, 2])
    top[0].data[...] = 5.0  # Caffe does not refill a constant top
    run_forward(layer, [], top)
    np.testing.assert_array_equal(backend.to_numpy(top[0].data), [5, 5, 5])


def test_dummydata_random_refilled_each_forward(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { shape { dim: 50 } '
                        'data_filler { type: "uniform" min: 2 max: 3 } }', 1, xp)
    first, = run_forward(layer, [], top)
    second, = run_forward(layer, [], top)
    assert ((first >= 2) & (first < 3)).all() and ((second >= 2) & (second < 3)).all()
    assert not np.array_equal(first, second)


def test_dummydata_filler_per_top(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { shape { dim: 4 } '
                        'data_filler { type: "constant" value: 1 } '
                        'data_filler { type: "gaussian" std: 1 } }', 2, xp)
    assert layer.refill == [False, True]
    a, b = run_forward(layer, [], top)
    np.testing.assert_array_equal(a, 1.0)
    assert b.std() > 0


def test_dummydata_legacy_dims(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { num: 2 num: 3 channels: 1 '
                        'height: 4 width: 5 width: 6 }', 2, xp)
    assert [t.shape for t in top] == [(2, 1, 4, 5), (3, 1, 4, 6)]


@pytest.mark.parametrize("text,message", [
    ('shape { dim: 2 } num: 1 channels: 1 height: 1 width: 1', "both shape and legacy"),
    ('num: 1 channels: 1 width: 1', "must specify 'height' once"),
    ('shape { dim: 1 } shape { dim: 2 } shape { dim: 3 }', "must specify 'shape' once"),
    ('', "must specify 'shape' once"),
    ('shape { dim: 2 } data_filler { } data_filler { } data_filler { }',
     "number of data fillers must be 0, 1 or equal"),
    ('shape { dim: 2 } data_filler { type: "nonsense" }', "unknown filler type"),
    ('shape { dim: 2 } data_filler { type: "bilinear" }', "bilinear filler needs"),
])
def test_dummydata_bad_params(text, message):
    with pytest.raises(LayerSetupError, match=message):
        _build('name: "dd" type: "DummyData" dummy_data_param { %s }' % text, 2)


def test_dummydata_keeps_dtype(xp):
    layer, top = _build('type: "DummyData" dummy_data_param { shape { dim: 2 } '
                        'data_filler { type: "gaussian" } }', 1, xp, dtype=np.float32)
    assert run_forward(layer, [], top)[0].dtype == np.float32
