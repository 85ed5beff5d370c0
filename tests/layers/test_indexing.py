"""Embed, Filter, BatchReindex, Parameter: closed forms, gradients (params
included), index bottoms that get no gradient, bad input.
Caffe's own numbers: tests/golden/test_golden_layers.py (embed, filter, batch_reindex)."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers import LayerSetupError

EMBED = """name: "e" type: "Embed"
embed_param { input_dim: 5 num_output: 3 %s
  weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 } }"""


def _np(a):
    return backend.to_numpy(a)


# -- Embed -------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_embed_forward_is_a_row_lookup_plus_bias(xp, bias):
    idx = np.array([[0, 4, 2], [2, 2, 1]], float)
    layer, bottom, top = build_layer(EMBED % ("bias_term: %s" % str(bias).lower()),
                                     [idx], xp=xp)
    assert len(layer.blobs) == (2 if bias else 1)
    assert layer.blobs[0].shape == (5, 3)
    (y,) = run_forward(layer, bottom, top)
    w = _np(layer.blobs[0].data)
    want = w[idx.astype(int)] + (_np(layer.blobs[1].data) if bias else 0)
    assert y.shape == (2, 3, 3)
    np.testing.assert_allclose(y, want)


def test_embed_gradient_of_params(xp):
    idx = np.array([[0, 4, 2], [2, 2, 1]], float)  # index 2 repeats: its rows sum
    layer, bottom, top = build_layer(EMBED % "", [idx], xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[])


def test_embed_param_diffs_accumulate_and_index_gets_none(xp):
    idx = np.array([3, 3, 0], float)
    layer, bottom, top = build_layer(EMBED % "", [idx], xp=xp)
    assert not layer.allow_force_backward(0)
    run_forward(layer, bottom, top)
    top[0].diff[...] = xp.asarray(np.arange(9.0).reshape(3, 3))
    for _ in range(2):
        layer.backward(top, [False], bottom)
    dw = np.zeros((5, 3))
    dw[3] = 2 * (np.arange(3.0) + np.arange(3.0, 6.0))
    dw[0] = 2 * np.arange(6.0, 9.0)
    np.testing.assert_allclose(_np(layer.blobs[0].diff), dw)
    np.testing.assert_allclose(_np(layer.blobs[1].diff), 2 * np.arange(9.0).reshape(3, 3).sum(0))
    with pytest.raises(LayerSetupError, match="Can't backpropagate to EmbedLayer input"):
        layer.backward(top, [True], bottom)


@pytest.mark.parametrize("idx, msg", [([0, 5], r"in \[0, 5\)"), ([-1, 0], r"in \[0, 5\)"),
                                      ([1.5, 0], "non-integer")])
def test_embed_rejects_bad_indices(idx, msg):
    layer, bottom, top = build_layer(EMBED % "", [np.array(idx, float)])
    with pytest.raises(LayerSetupError, match=msg):
        run_forward(layer, bottom, top)


@pytest.mark.parametrize("field", ["input_dim: 0 num_output: 3", "input_dim: 4 num_output: 0"])
def test_embed_rejects_bad_sizes(field):
    with pytest.raises(LayerSetupError, match="must be positive"):
        build_layer('name: "e" type: "Embed" embed_param { %s }' % field, [np.zeros(2)])


# -- Filter ------------------------------------------------------------------

FILTER = 'name: "f" type: "Filter"'


def test_filter_keeps_selected_items_of_each_bottom(xp):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 2))
    sel = np.array([1.0, 0.0, 0.5, 1.0])  # any nonzero value selects
    layer, bottom, top = build_layer(FILTER, [a, b, sel], n_top=2, xp=xp)
    assert top[0].shape == (4, 3, 2)  # Caffe: the first reshape keeps every item
    ya, yb = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(ya, a[[0, 2, 3]])
    np.testing.assert_array_equal(yb, b[[0, 2, 3]])
    assert not layer.allow_force_backward(2) and layer.allow_force_backward(0)


def test_filter_gradient_scatters_back_with_zeros_elsewhere(xp):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 2, 2))
    sel = np.array([[0.0], [1.0], [0.0], [1.0]])
    layer, bottom, top = build_layer(FILTER, [a, b, sel], n_top=2, xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[0, 1])
    assert np.all(_np(bottom[0].diff)[[0, 2]] == 0)
    with pytest.raises(LayerSetupError, match="cannot backpropagate"):
        layer.backward(top, [True, True, True], bottom)


def test_filter_with_nothing_selected(xp):
    layer, bottom, top = build_layer(FILTER, [np.ones((3, 2)), np.zeros(3)], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (0, 2)
    layer.backward(top, [True, False], bottom)
    assert np.all(_np(bottom[0].diff) == 0)


@pytest.mark.parametrize("shapes, n_top, msg", [
    ([(4, 2), (4,)], 2, "bottom.size"),
    ([(4, 2), (4, 2)], 1, "singletons"),
    ([(3, 2), (4,)], 1, "same 0th dimension"),
])
def test_filter_rejects_bad_blobs(shapes, n_top, msg):
    with pytest.raises(LayerSetupError, match=msg):
        build_layer(FILTER, [np.ones(s) for s in shapes], n_top=n_top)


# -- BatchReindex ------------------------------------------------------------

REINDEX = 'name: "r" type: "BatchReindex"'


def test_batch_reindex_forward_and_summed_gradient(xp):
    x = np.random.default_rng(2).standard_normal((4, 3, 2))
    perm = np.array([2, 0, 2, 1, 3], float)
    layer, bottom, top = build_layer(REINDEX, [x, perm], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, x[[2, 0, 2, 1, 3]])
    assert not layer.allow_force_backward(1)
    check_gradient(layer, bottom, top, check_bottom=[0])
    top[0].diff[...] = 1
    layer.backward(top, [True, False], bottom)
    np.testing.assert_array_equal(_np(bottom[0].diff)[:, 0, 0], [1, 1, 2, 1])


def test_batch_reindex_rejects_bad_indices():
    layer, bottom, top = build_layer(REINDEX, [np.ones((3, 2)), np.array([0.0, 3.0])])
    with pytest.raises(LayerSetupError, match="reindex layer"):
        run_forward(layer, bottom, top)
    with pytest.raises(LayerSetupError, match="1 axis"):
        build_layer(REINDEX, [np.ones((3, 2)), np.zeros((2, 1))])


# -- Parameter ---------------------------------------------------------------

PARAM = 'name: "p" type: "Parameter" parameter_param { shape { dim: 2 dim: 3 } }'


def test_parameter_top_is_its_blob_and_diff_accumulates(xp):
    layer, bottom, top = build_layer(PARAM, [], xp=xp)
    assert layer.blobs[0].shape == (2, 3) and np.all(_np(layer.blobs[0].data) == 0)
    layer.blobs[0].data[...] = xp.asarray(np.arange(6.0).reshape(2, 3))
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, np.arange(6.0).reshape(2, 3))
    top[0].diff[...] = 1.5
    layer.backward(top, [], bottom)
    layer.backward(top, [], bottom)
    np.testing.assert_array_equal(_np(layer.blobs[0].diff), np.full((2, 3), 3.0))
    check_gradient(layer, bottom, top, check_bottom=[])


def test_parameter_feeds_a_net_and_gets_its_gradient():
    net = caffe.Net(parse_net_text("""
        layer { name: "x" type: "Parameter" top: "x"
                parameter_param { shape { dim: 3 dim: 2 } } }
        layer { name: "sel" type: "Input" top: "sel" input_param { shape { dim: 3 } } }
        layer { name: "f" type: "Filter" bottom: "x" bottom: "sel" top: "y"
                loss_weight: 1 }"""), caffe.TRAIN)
    net.params["x"][0].data[...] = np.arange(6.0).reshape(3, 2)
    net.blobs["sel"].data[...] = [1, 0, 1]
    net.forward()
    np.testing.assert_array_equal(net.blobs["y"].data, [[0, 1], [4, 5]])
    net.backward()
    np.testing.assert_array_equal(net.params["x"][0].diff, [[1, 1], [0, 0], [1, 1]])
