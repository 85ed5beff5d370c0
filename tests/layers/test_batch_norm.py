"""BatchNorm: batch and global statistics, running averages, gradients, in-place use,
the frozen statistics, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError
from pycaffe_lowbit.proto import caffe_pb2

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def _x(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) * 2 + 0.5


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _batch_norm(x, eps=1e-5):
    c = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=_axes(x)), x.var(axis=_axes(x))
    return (x - mean.reshape(c)) / np.sqrt(var.reshape(c) + eps), mean, var


def _stats(layer):
    return [backend.to_numpy(b.data).copy() for b in layer.blobs]


@pytest.mark.parametrize("shape", [(4, 3, 2, 3), (6, 4), (2, 3, 5)])
def test_train_forward_and_running_averages(xp, shape):
    x1, x2 = _x(shape), _x(shape, 1)
    layer, bottom, top = build_layer(
        'type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 }',
        [x1], xp=xp, phase=TRAIN)
    assert [b.shape for b in layer.blobs] == [(shape[1],), (shape[1],), (1,)]
    assert not any(s.any() for s in _stats(layer))  # zeros until the first forward
    y, mean1, var1 = _batch_norm(x1)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], y, atol=1e-12)
    m = x1.size / shape[1]
    mean, var, s = _stats(layer)
    np.testing.assert_allclose(s, [1.0])
    np.testing.assert_allclose(mean, mean1)
    np.testing.assert_allclose(var, var1 * m / (m - 1))
    bottom[0].data[...] = xp.asarray(x2)
    y, mean2, var2 = _batch_norm(x2)
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], y, atol=1e-12)
    a = np.float32(0.9).item()  # the proto field is a float
    mean, var, s = _stats(layer)
    np.testing.assert_allclose(s, [a + 1])
    np.testing.assert_allclose(mean, a * mean1 + mean2)
    np.testing.assert_allclose(var, (a * var1 + var2) * m / (m - 1))


def test_single_value_per_channel_uses_no_correction(xp):
    x = _x((1, 3))
    layer, bottom, top = build_layer('type: "BatchNorm"', [x], xp=xp, phase=TRAIN)
    run_forward(layer, bottom, top)
    np.testing.assert_allclose(_stats(layer)[1], [0, 0, 0])
    np.testing.assert_allclose(_stats(layer)[0], x[0])


def test_test_phase_uses_global_stats_divided_by_the_scale_factor(xp):
    x = _x((2, 3, 4))
    layer, bottom, top = build_layer('type: "BatchNorm" batch_norm_param { eps: 1e-3 }',
                                     [x], xp=xp, phase=TEST)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([1.0, 4.0, 0.25])
    for blob, v in zip(layer.blobs, (mean * 2.5, var * 2.5, [2.5])):
        blob.data[...] = xp.asarray(v)
    want = (x - mean.reshape(1, 3, 1)) / np.sqrt(var.reshape(1, 3, 1) + np.float32(1e-3).item())
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    before = _stats(layer)
    run_forward(layer, bottom, top)
    for a, b in zip(before, _stats(layer)):  # no update with global stats
        np.testing.assert_array_equal(a, b)
    layer.blobs[2].data[...] = 0  # Caffe: a zero scale factor zeroes mean and var
    want = x / np.sqrt(np.float32(1e-3).item())
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)


@pytest.mark.parametrize("phase, flag, global_stats", [
    (TRAIN, "", False), (TEST, "", True),
    (TRAIN, "use_global_stats: true", True), (TEST, "use_global_stats: false", False),
])
def test_use_global_stats_default_follows_phase(xp, phase, flag, global_stats):
    layer, _, _ = build_layer('type: "BatchNorm" batch_norm_param { %s }' % flag,
                              [_x((2, 3))], xp=xp, phase=phase)
    assert layer.use_global_stats is global_stats


@pytest.mark.parametrize("shape", [(3, 2, 2, 2), (5, 3)])
def test_gradient_batch_stats(xp, shape):
    layer, bottom, top = build_layer('type: "BatchNorm"', [_x(shape)], xp=xp, phase=TRAIN)
    check_gradient(layer, bottom, top, check_params=False)
    assert not any(backend.to_numpy(b.diff).any() for b in layer.blobs)


def test_gradient_global_stats(xp):
    layer, bottom, top = build_layer('type: "BatchNorm"', [_x((2, 3, 2))], xp=xp, phase=TEST)
    for blob, v in zip(layer.blobs, ([0.1, 0.2, 0.3], [1.0, 2.0, 0.5], [1.0])):
        blob.data[...] = xp.asarray(v)
    check_gradient(layer, bottom, top, check_params=False)
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)  # dx = dy / sqrt(var + eps)
    want = 1 / np.sqrt(np.array([1.0, 2.0, 0.5]) + np.float32(1e-5).item())
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff)[0, :, 0], want)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_in_place_matches_out_of_place(xp, phase):
    x, dy = _x((3, 2, 4)), _x((3, 2, 4), 1)
    ref, rb, rt = build_layer('type: "BatchNorm"', [x], xp=xp, phase=phase)
    layer, bottom, _ = build_layer('type: "BatchNorm"', [x], xp=xp, phase=phase)
    for lay in (ref, layer):
        lay.blobs[1].data[...] = 1
        lay.blobs[2].data[...] = 1
    top = bottom
    want = run_forward(ref, rb, rt)[0]
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)
    top[0].data[...] = 123  # a later in-place layer may clobber the top
    for b, t in ((rb, rt), (bottom, top)):
        t[0].diff[...] = xp.asarray(dy)
    ref.backward(rt, [True], rb)
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), backend.to_numpy(rb[0].diff))


def test_statistics_are_frozen_like_caffe(xp):
    layer, _, _ = build_layer('type: "BatchNorm" param { lr_mult: 0 }', [_x((2, 3))], xp=xp)
    assert [p.lr_mult for p in layer.param.param] == [0, 0, 0]
    assert layer.param_propagate_down == [False, False, False]
    with pytest.raises(LayerSetupError, match="cannot configure batch normalization"):
        build_layer('name: "bn" type: "BatchNorm" param { lr_mult: 1 }', [_x((2, 3))], xp=xp)


def test_preloaded_statistics_are_kept(xp):
    text = ('type: "BatchNorm" blobs { shape { dim: 2 } data: 2 data: 4 } '
            'blobs { shape { dim: 2 } data: 8 data: 2 } blobs { shape { dim: 1 } data: 2 }')
    x = _x((3, 2))
    layer, bottom, top = build_layer(text, [x], xp=xp, phase=TEST)
    want = (x - [1, 2]) / np.sqrt(np.array([4, 1]) + np.float32(1e-5).item())
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0], want)


@pytest.mark.parametrize("text, shape, message", [
    ('type: "BatchNorm"', (4,), "N x 1 x"),
    ('type: "BatchNorm" blobs { shape { dim: 3 } data: [0, 0, 0] }', (2, 3),
     "expects 3 blobs"),
    ('type: "BatchNorm" blobs { shape { dim: 2 } data: [0, 0] } '
     'blobs { shape { dim: 3 } data: [0, 0, 0] } blobs { shape { dim: 1 } data: 1 }',
     (2, 3), "blob 0 has shape"),
])
def test_errors(xp, text, shape, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer(text, [_x(shape)], xp=xp)


def test_channel_change_is_refused(xp):
    layer, bottom, top = build_layer('type: "BatchNorm"', [_x((2, 3))], xp=xp)
    bottom[0].reshape(2, 4)
    with pytest.raises(LayerSetupError, match="N x 3 x"):
        layer.reshape(bottom, top)


def test_empty_batch_in_train_is_a_clear_error_and_leaves_the_statistics(xp):
    """Issue 24: no ZeroDivisionError from deep inside; the error names the layer
    and its bottom, and the running statistics are not touched."""
    layer, bottom, top = build_layer('name: "bn1" type: "BatchNorm" bottom: "pool1"',
                                     [_x((2, 3, 2, 2))], xp=xp, phase=TRAIN)
    run_forward(layer, bottom, top)
    before = _stats(layer)
    bottom[0].reshape(0, 3, 2, 2)
    layer.reshape(bottom, top)
    with pytest.raises(LayerSetupError, match=r"layer 'bn1' \(type BatchNorm\): batch statistics"
                                              r".*bottom 'pool1' has shape \(0, 3, 2, 2\)"):
        layer.forward(bottom, top)
    for a, b in zip(before, _stats(layer)):
        np.testing.assert_array_equal(a, b)


def test_empty_batch_on_global_statistics_gives_an_empty_top(xp):
    layer, bottom, top = build_layer('type: "BatchNorm"', [_x((2, 3))], xp=xp, phase=TEST)
    bottom[0].reshape(0, 3)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    assert top[0].shape == (0, 3)
