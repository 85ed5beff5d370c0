"""Concat and Slice: shapes, legacy axis fields, gradients, errors, golden data."""
import os

import numpy as np
import pytest
from google.protobuf import text_format

from helpers import build_layer, check_gradient, make_blobs, run_forward
from pycaffe_lowbit import backend
from pycaffe_lowbit.blob import Blob
from pycaffe_lowbit.layers import LayerSetupError, create_layer
from pycaffe_lowbit.proto import caffe_pb2

def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- Concat ---------------------------------------------------------------------
@pytest.mark.parametrize("param, axis", [
    ("", 1), ("concat_param { axis: 0 }", 0), ("concat_param { axis: -1 }", 2),
    ("concat_param { concat_dim: 2 }", 2),
])
def test_concat_forward(xp, param, axis):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for s, extra in zip(shapes, (1, 2, 3)):
        s[axis] = extra
    xs = [_x(s, i) for i, s in enumerate(shapes)]
    layer, bottom, top = build_layer('type: "Concat" ' + param, xs, xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y, np.concatenate(xs, axis))


def test_concat_gradient_and_partial_backward(xp):
    xs = [_x((2, 1, 3)), _x((2, 2, 3), 1)]
    layer, bottom, top = build_layer('type: "Concat"', xs, xp=xp)
    check_gradient(layer, bottom, top)
    dy = _x((2, 3, 3), 2)
    top[0].diff[...] = xp.asarray(dy)
    bottom[0].diff[...] = 5
    layer.backward(top, [False, True], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 5).all()
    np.testing.assert_array_equal(backend.to_numpy(bottom[1].diff), dy[:, 1:])


def test_concat_single_bottom_shares(xp):
    layer, bottom, top = build_layer('type: "Concat"', [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    assert top[0].data is bottom[0].data
    layer.backward(top, [True], bottom)
    assert bottom[0].diff is top[0].diff


@pytest.mark.parametrize("shapes, param, message", [
    ([(2, 3, 4), (2, 3, 5)], "", r"except at concat_axis 1: bottom\[0\] \(2, 3, 4\), "
                                 r"bottom\[1\] 'b' \(2, 3, 5\)"),
    ([(2, 3, 4), (2, 3)], "", r"same #axes.*bottom\[1\] 'b'"),
    ([(2, 3), (2, 3)], "concat_param { axis: 2 }", "axis 2 out of range"),
    ([(2, 3), (2, 3)], "concat_param { concat_dim: 2 }", "concat_dim 2 out of range"),
    ([(2, 3), (2, 3)], "concat_param { axis: 0 concat_dim: 0 }", "not both"),
])
def test_concat_errors(xp, shapes, param, message):
    text = 'name: "cat" type: "Concat" bottom: "a" bottom: "b" ' + param
    with pytest.raises(LayerSetupError, match=message):
        build_layer(text, [_x(s) for s in shapes], xp=xp)


# -- Slice ----------------------------------------------------------------------
@pytest.mark.parametrize("param, n_top, bounds", [
    ("slice_param { slice_point: 1 slice_point: 4 }", 3, [0, 1, 4, 6]),
    ("", 3, [0, 2, 4, 6]),
    ("slice_param { axis: 2 }", 2, [0, 2, 4]),
    ("slice_param { axis: -1 slice_point: 3 }", 2, [0, 3, 4]),
    ("slice_param { slice_dim: 0 }", 2, [0, 1, 2]),
])
def test_slice_forward(xp, param, n_top, bounds):
    x = _x((2, 6, 4))
    axis = {"axis: 2": 2, "axis: -1": 2, "slice_dim: 0": 0}
    axis = next((a for k, a in axis.items() if k in param), 1)
    layer, bottom, top = build_layer('type: "Slice" ' + param, [x], n_top=n_top, xp=xp)
    ys = run_forward(layer, bottom, top)
    for y, lo, hi in zip(ys, bounds, bounds[1:]):
        np.testing.assert_array_equal(y, np.take(x, range(lo, hi), axis=axis))
    for t in top:  # blocks are copies: no top aliases the bottom
        assert not xp.shares_memory(t.data, bottom[0].data)


def test_slice_gradient(xp):
    layer, bottom, top = build_layer('type: "Slice" slice_param { slice_point: 1 }',
                                     [_x((2, 3, 2))], n_top=2, xp=xp)
    check_gradient(layer, bottom, top)


def test_slice_single_top_shares(xp):
    layer, bottom, top = build_layer('type: "Slice"', [_x((2, 3))], xp=xp)
    run_forward(layer, bottom, top)
    assert top[0].data is bottom[0].data
    layer.backward(top, [True], bottom)
    assert bottom[0].diff is top[0].diff


@pytest.mark.parametrize("param, n_top, message", [
    ("slice_param { slice_point: 2 }", 3, "1 slice_point"),
    ("", 4, r"number of top blobs \(4\) should evenly divide input slice axis \(6\)"),
    ("slice_param { slice_point: 3 slice_point: 2 }", 3, "increasing"),
    ("slice_param { slice_point: 7 }", 2, "exceeds"),
    ("slice_param { axis: 1 slice_dim: 1 }", 2, "not both"),
    ("slice_param { slice_dim: 3 }", 2, "slice_dim 3 out of range"),
])
def test_slice_errors(xp, param, n_top, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "s" type: "Slice" ' + param, [_x((2, 6, 3))], n_top=n_top, xp=xp)


# -- golden: official Caffe's numbers (tests/data/golden/layers), layer built directly
GOLDEN = os.path.join(os.path.dirname(__file__), "..", "data", "golden", "layers")


def _close(ours, ref, what):
    ours, ref = backend.to_numpy(ours).astype(np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, "%s: shape %s, Caffe %s" % (what, ours.shape, ref.shape)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-6)
    assert float(np.abs(ours - ref).max(initial=0.0)) <= 1e-4 * scale, what


def run_golden(case, xp):
    """Forward and backward one case in float32; compare tops, stats, diffs."""
    d = np.load(os.path.join(GOLDEN, case + ".npz"))
    net = text_format.Parse(str(d["prototxt"]), caffe_pb2.NetParameter())
    (lp,) = [l for l in net.layer if l.type != "Input"]
    phase = caffe_pb2.TRAIN if str(d["phase"]) == "TRAIN" else caffe_pb2.TEST
    layer = create_layer(lp, phase=phase, dtype=np.float32)
    bottom = make_blobs([d["in__" + b] for b in lp.bottom], xp, np.float32)
    top = [Blob((), dtype=np.float32, xp=xp) for _ in lp.top]
    layer.setup(bottom, top)
    key = lambda kind, i: "%s__%s__%d" % (kind, lp.name, i)
    for i, p in enumerate(layer.blobs):
        p.data[...] = xp.asarray(d[key("param", i)])
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    for name, t in zip(lp.top, top):
        _close(t.data, d["out__" + name], "out__" + name)
    for i, p in enumerate(layer.blobs):
        if key("paramafter", i) in d:
            _close(p.data, d[key("paramafter", i)], key("paramafter", i))
    for name, t in zip(lp.top, top):
        t.diff[...] = xp.asarray(d["topdiff__" + name])
    for p in layer.blobs:
        p.diff[...] = 0
    layer.backward(top, [True] * len(bottom), bottom)
    for name, b in zip(lp.bottom, bottom):
        _close(b.diff, d["diff__" + name], "diff__" + name)
    for i, p in enumerate(layer.blobs):
        _close(p.diff, d[key("paramdiff", i)], key("paramdiff", i))


@pytest.mark.parametrize("case", ["concat_axis0", "concat_axis1", "slice_points",
                                  "slice_even_axis2"])
def test_golden(xp, case):
    run_golden(case, xp)
