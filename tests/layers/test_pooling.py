"""Pooling: Caffe's loops as the reference, output-size rules, gradients,
stochastic sampling, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import math

import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError, pooling as pooling_mod
from pycaffe_lowbit.proto import caffe_pb2

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def caffe_out_size(size, k, s, p, floor=False):
    """pooling_layer.cpp's Reshape, literally."""
    o = int((math.floor if floor else math.ceil)((size + 2 * p - k) / float(s))) + 1
    if p and (o - 1) * s >= size + p:
        o -= 1
    return o


def naive_pool(x, method, kernel, stride, pad, floor=False):
    """pooling_layer.cpp's Forward_cpu loops (MAX also returns the mask)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = caffe_out_size(h, kh, sh, ph, floor), caffe_out_size(w, kw, sw, pw, floor)
    y = np.zeros((n, c, oh, ow))
    mask = -np.ones((n, c, oh, ow))
    for i, ch, a, b in np.ndindex(n, c, oh, ow):
        hs, ws = a * sh - ph, b * sw - pw
        if method == "MAX":
            he, we = min(hs + kh, h), min(ws + kw, w)
            hs, ws = max(hs, 0), max(ws, 0)
            best = -np.finfo(np.float64).max
            for r in range(hs, he):
                for q in range(ws, we):
                    if x[i, ch, r, q] > best:
                        best, mask[i, ch, a, b] = x[i, ch, r, q], r * w + q
            y[i, ch, a, b] = best
        else:
            he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
            size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            y[i, ch, a, b] = x[i, ch, hs:he, ws:we].sum() / size
    return y, mask


def distinct(shape, seed=0):
    """Pairwise distinct values at least 0.05 apart (no MAX ties or kinks)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.05 - 0.025 * n


def _pool(params, x, xp=np, n_top=1, **kw):
    return build_layer('name: "pool" type: "Pooling" pooling_param { %s }' % params, [x],
                       n_top=n_top, xp=xp, **kw)


CASES = [
    # params, input shape, kernel, stride, pad, floor
    ("pool: MAX kernel_size: 3 stride: 2", (2, 2, 7, 7), (3, 3), (2, 2), (0, 0), False),
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", (1, 2, 6, 6), (3, 3), (2, 2), (1, 1), False),
    ("pool: MAX kernel_size: 2 stride: 2 pad: 1", (1, 2, 5, 5), (2, 2), (2, 2), (1, 1), False),
    ("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", (1, 2, 6, 6), (3, 3), (2, 2),
     (0, 0), True),
    ("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 0 pad_w: 1",
     (2, 1, 6, 5), (2, 3), (2, 1), (0, 1), False),
    ("pool: MAX kernel_size: 1 stride: 3", (1, 1, 5, 5), (1, 1), (3, 3), (0, 0), False),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (2, 2, 7, 7), (3, 3), (2, 2), (1, 1), False),
    ("pool: AVE kernel_size: 3 stride: 2", (1, 2, 6, 6), (3, 3), (2, 2), (0, 0), False),
    ("pool: AVE kernel_size: 2 stride: 2 pad: 1", (1, 2, 5, 5), (2, 2), (2, 2), (1, 1), False),
    ("pool: AVE kernel_size: 4 stride: 3 pad: 2 round_mode: FLOOR", (1, 1, 9, 8), (4, 4),
     (3, 3), (2, 2), True),
    ("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 1",
     (1, 2, 5, 6), (3, 2), (1, 2), (1, 1), False),
    ("pool: AVE kernel_size: 4", (2, 3, 3, 4), (4, 4), (1, 1), (0, 0), False),
    ("pool: MAX kernel_size: 4", (2, 3, 3, 4), (4, 4), (1, 1), (0, 0), False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_forward_matches_caffe_loops(xp, case):
    params, shape, kernel, stride, pad, floor = case
    x = distinct(shape)
    method = "MAX" if "MAX" in params else "AVE"
    layer, bottom, top = _pool(params, x, xp, n_top=2 if method == "MAX" else 1)
    outs = run_forward(layer, bottom, top)
    y, mask = naive_pool(x, method, kernel, stride, pad, floor)
    np.testing.assert_allclose(outs[0], y, rtol=1e-12)
    if method == "MAX":
        np.testing.assert_array_equal(outs[1], mask)


@pytest.mark.filterwarnings("ignore:invalid value")  # an empty AVE window: 0 / 0, as Caffe
def test_random_geometries_match_caffe_loops(xp):
    rng = np.random.default_rng(11)
    for _ in range(40):
        kh, kw = rng.integers(1, 5, 2)
        sh, sw = rng.integers(1, 4, 2)
        ph, pw = rng.integers(0, kh), rng.integers(0, kw)
        h, w = rng.integers(max(1, kh - 2 * ph), 8), rng.integers(max(1, kw - 2 * pw), 8)
        floor = bool(rng.integers(2))
        method = ["MAX", "AVE"][rng.integers(2)]
        params = ("pool: %s kernel_h: %d kernel_w: %d stride_h: %d stride_w: %d pad_h: %d "
                  "pad_w: %d round_mode: %s" % (method, kh, kw, sh, sw, ph, pw,
                                                "FLOOR" if floor else "CEIL"))
        x = distinct((2, 2, h, w), seed=int(rng.integers(100)))
        layer, bottom, top = _pool(params, x, xp, n_top=2 if method == "MAX" else 1)
        outs = run_forward(layer, bottom, top)
        y, mask = naive_pool(x, method, (kh, kw), (sh, sw), (ph, pw), floor)
        np.testing.assert_allclose(outs[0], y, rtol=1e-12, err_msg=params)
        if method == "MAX":
            np.testing.assert_array_equal(outs[1], mask, err_msg=params)


@pytest.mark.parametrize("case", [c for c in CASES if "stride: 3" not in c[0]],
                         ids=lambda c: c[0])
def test_gradient(xp, case):
    params, shape = case[:2]
    layer, bottom, top = _pool(params, distinct(shape), xp)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(xp, method):
    x = distinct((2, 3, 4, 5))
    layer, bottom, top = _pool("pool: %s global_pooling: true" % method, x, xp)
    (y,) = run_forward(layer, bottom, top)
    ref = x.max(axis=(2, 3)) if method == "MAX" else x.mean(axis=(2, 3))
    np.testing.assert_allclose(y, ref[..., None, None], rtol=1e-12)
    check_gradient(layer, bottom, top)
    bottom[0].reshape(1, 3, 6, 2)  # the window follows the input
    bottom[0].data[...] = xp.asarray(distinct((1, 3, 6, 2), seed=1))
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (1, 3, 1, 1)


def test_max_ties_and_mask(xp):
    """The first maximum in row-major order wins, as Caffe's strict '>'."""
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5
    layer, bottom, top = _pool("pool: MAX kernel_size: 2 stride: 2", x, xp, n_top=2)
    y, mask = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(mask[0, 0], [[5, 6], [8, 10]])
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [0, 0]])
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    dx = backend.to_numpy(bottom[0].diff)[0, 0]
    assert dx.sum() == 4 and dx[1, 1] == 1 and dx[1, 2] == 1


def test_max_empty_window_keeps_lowest():
    """kernel 1 stride 3 on 5 (no pad): ceil gives a window starting at 6, outside."""
    x = distinct((1, 1, 5, 5))
    layer, bottom, top = _pool("pool: MAX kernel_size: 1 stride: 3", x, n_top=2)
    y, mask = run_forward(layer, bottom, top)
    assert y.shape == (1, 1, 3, 3)
    assert y[0, 0, 2, 2] == -np.finfo(np.float64).max and mask[0, 0, 2, 2] == -1


@pytest.mark.parametrize("size,k,s,p,floor", [
    (7, 3, 2, 0, False), (7, 3, 2, 1, False), (6, 3, 2, 0, False), (6, 3, 2, 1, False),
    (5, 2, 2, 1, False), (6, 3, 2, 0, True), (6, 3, 2, 1, True), (10, 3, 3, 2, False),
    (13, 3, 2, 1, False), (4, 4, 1, 0, False), (5, 3, 3, 1, False),
])
def test_output_size_rule(size, k, s, p, floor):
    params = "kernel_size: %d stride: %d pad: %d round_mode: %s" % (
        k, s, p, "FLOOR" if floor else "CEIL")
    _, _, top = _pool("pool: AVE " + params, np.zeros((1, 1, size, size)))
    o = caffe_out_size(size, k, s, p, floor)
    assert top[0].shape == (1, 1, o, o)


def test_documented_sizes():
    """The clipping cases of the golden notes: 5x5 k2 s2 p1 gives 3 (ceil 4, last
    window in the padding dropped); 6x6 k3 s2 p1 gives 4; FLOOR 6x6 k3 s2 gives 2."""
    for params, size, expected in [("kernel_size: 2 stride: 2 pad: 1", 5, 3),
                                   ("kernel_size: 3 stride: 2 pad: 1", 6, 4),
                                   ("kernel_size: 3 stride: 2 round_mode: FLOOR", 6, 2)]:
        _, _, top = _pool("pool: MAX " + params, np.zeros((1, 1, size, size)))
        assert top[0].shape[2:] == (expected, expected)


@pytest.mark.parametrize("params,phase", [
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", TEST),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", TEST),
    ("pool: STOCHASTIC kernel_size: 2 stride: 2", TEST),
    ("pool: STOCHASTIC kernel_size: 3 stride: 2", TRAIN),
])
def test_chunked_planes_equal_one_chunk(xp, monkeypatch, params, phase):
    x = distinct((2, 3, 7, 6)) + 5.0  # positive for STOCHASTIC
    dy = np.random.default_rng(9).standard_normal((2, 3, 4, 4))
    results = []
    for budget in (1 << 30, 1):  # all planes at once; one plane per chunk
        monkeypatch.setattr(pooling_mod, "_CHUNK_BYTES", budget)
        backend.set_random_seed(3)
        layer, bottom, top = _pool(params, x, xp, phase=phase)
        run_forward(layer, bottom, top)
        g = dy[:, :, :top[0].shape[2], :top[0].shape[3]]
        top[0].diff[...] = xp.asarray(g)
        layer.backward(top, [True], bottom)
        results.append([backend.to_numpy(top[0].data).copy(),
                        backend.to_numpy(bottom[0].diff).copy()])
    if phase == TRAIN:  # each output picks one input, with one draw per output
        for y, dx in results:
            assert np.isin(y, x).all()
            np.testing.assert_allclose(dx.sum(axis=(2, 3)), g.sum(axis=(2, 3)))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# -- STOCHASTIC -----------------------------------------------------------------
def test_stochastic_test_phase(xp):
    x = np.random.default_rng(3).uniform(0.1, 1.0, (2, 2, 5, 5))
    layer, bottom, top = _pool("pool: STOCHASTIC kernel_size: 3 stride: 2", x, xp, phase=TEST)
    (y,) = run_forward(layer, bottom, top)
    ref = np.zeros((2, 2, 2, 2))
    for i, c, a, b in np.ndindex(*ref.shape):
        win = x[i, c, 2 * a:2 * a + 3, 2 * b:2 * b + 3]
        ref[i, c, a, b] = (win * win).sum() / (np.finfo(np.float32).tiny + win.sum())
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    check_gradient(layer, bottom, top)


def test_stochastic_train_samples_by_value(xp):
    values = np.array([1.0, 2.0, 3.0, 4.0])
    n = 4000
    x = np.broadcast_to(values.reshape(1, 1, 2, 2), (n, 1, 2, 2)).copy()
    backend.set_random_seed(5)
    layer, bottom, top = _pool("pool: STOCHASTIC kernel_size: 2", x, xp, phase=TRAIN)
    (y,) = run_forward(layer, bottom, top)
    freq = np.array([(y == v).mean() for v in values])
    np.testing.assert_allclose(freq, values / values.sum(), atol=0.03)
    top[0].diff[...] = xp.asarray(np.arange(n, dtype=np.float64).reshape(n, 1, 1, 1))
    layer.backward(top, [True], bottom)
    dx = backend.to_numpy(bottom[0].diff).reshape(n, 4)
    chosen = np.argmax(values[None, :] == y.reshape(n, 1), axis=1)
    np.testing.assert_array_equal(dx[np.arange(n), chosen], np.arange(n))
    assert (dx != 0).sum() == n - 1  # one element per window (image 0 gets 0)


def test_stochastic_train_ceil_window_stays_inside(xp):
    x = np.random.default_rng(4).uniform(0.1, 1.0, (3, 2, 6, 6))
    layer, bottom, top = _pool("pool: STOCHASTIC kernel_size: 3 stride: 2", x, xp, phase=TRAIN)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (3, 2, 3, 3)
    for i, c, a, b in np.ndindex(*y.shape):
        assert y[i, c, a, b] in x[i, c, 2 * a:2 * a + 3, 2 * b:2 * b + 3]


# -- errors ---------------------------------------------------------------------
@pytest.mark.parametrize("params,message", [
    ("kernel_size: 2 pad_w: 1", "pad is pad OR pad_h and pad_w are required"),
    ("kernel_size: 2 pad: 1 pad_h: 1 pad_w: 1", "pad is pad OR pad_h and pad_w"),
    ("kernel_size: 2 stride_h: 2", "Stride is stride OR stride_h and stride_w are required"),
    ("kernel_size: 2 kernel_h: 2 kernel_w: 2", "Filter size is kernel_size OR kernel_h"),
    ("kernel_h: 2", "Filter size is kernel_size OR kernel_h and kernel_w; not both"),
    ("stride: 2", "Filter size is kernel_size OR kernel_h"),
    ("global_pooling: true kernel_size: 2", "With Global_pooling: true Filter size cannot"),
    ("global_pooling: true pad: 1", "only pad = 0 and stride = 1"),
    ("kernel_size: 2 pad: 2", "must be smaller than the kernel"),
    ("kernel_size: 0", "Filter dimensions cannot be zero"),
    ("pool: STOCHASTIC kernel_size: 3 pad: 1", "Padding implemented only for average and max"),
    ("kernel_size: 7", "larger than the padded input"),
])
def test_bad_parameters(params, message):
    with pytest.raises(LayerSetupError, match=message):
        _pool(params, np.zeros((1, 1, 5, 5)))


def test_bad_blobs():
    with pytest.raises(LayerSetupError, match="Input must have 4 axes"):
        _pool("kernel_size: 2", np.zeros((1, 5, 5)))
    with pytest.raises(LayerSetupError, match="at most 1 top"):
        _pool("pool: AVE kernel_size: 2", np.zeros((1, 1, 5, 5)), n_top=2)
    with pytest.raises(LayerSetupError, match="at most 2 top"):
        _pool("pool: MAX kernel_size: 2", np.zeros((1, 1, 5, 5)), n_top=3)
