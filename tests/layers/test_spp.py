"""SPP: pyramid geometry, values against per-level Pooling layers, gradients,
shapes, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import math

import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.layers import LayerSetupError
from pycaffe_lowbit.layers.spp import level_geometry


def distinct(shape, seed=0):
    """Pairwise distinct values 0.05 apart (no MAX ties)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.05 - 0.025 * n


def _spp(params, x, xp=np):
    return build_layer('name: "spp" type: "SPP" spp_param { %s }' % params, [x], xp=xp)


@pytest.mark.parametrize("level, size", [(0, 7), (1, 7), (2, 7), (2, 9), (3, 13), (1, 1)])
def test_level_geometry_is_caffes(level, size):
    bins = 2 ** level
    kernel = int(math.ceil(size / float(bins)))
    assert level_geometry(level, size) == (kernel, (kernel * bins - size + 1) // 2)


def _levels_by_pooling(x, height, pool):
    """Each level through our Pooling layer with SPP's geometry, flattened, joined."""
    outs = []
    for level in range(height):
        (kh, ph), (kw, pw) = level_geometry(level, x.shape[2]), level_geometry(level, x.shape[3])
        layer, bottom, top = build_layer(
            'type: "Pooling" pooling_param { pool: %s kernel_h: %d kernel_w: %d stride_h: %d '
            'stride_w: %d pad_h: %d pad_w: %d }' % (pool, kh, kw, kh, kw, ph, pw), [x])
        outs.append(run_forward(layer, bottom, top)[0].reshape(x.shape[0], -1))
    return np.concatenate(outs, axis=1)


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
@pytest.mark.parametrize("height, shape", [(2, (2, 3, 7, 7)), (3, (1, 2, 9, 6)),
                                           (3, (2, 1, 6, 8))])
def test_spp_forward(xp, pool, height, shape):
    x = distinct(shape)
    layer, bottom, top = _spp("pyramid_height: %d pool: %s" % (height, pool), x, xp)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (shape[0], shape[1] * sum(4 ** l for l in range(height)))
    np.testing.assert_allclose(y, _levels_by_pooling(x, height, pool), rtol=1e-12)


def test_spp_max_level0_is_global_max(xp):
    x = distinct((2, 3, 5, 4))
    layer, bottom, top = _spp("pyramid_height: 2", x, xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_array_equal(y[:, :3], x.max(axis=(2, 3)))


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_spp_gradient(xp, pool):
    layer, bottom, top = _spp("pyramid_height: 3 pool: %s" % pool, distinct((1, 2, 6, 7)), xp)
    check_gradient(layer, bottom, top)


def test_spp_height_one_is_unflattened_pooling(xp):
    x = distinct((2, 3, 4, 5))
    layer, bottom, top = _spp("pyramid_height: 1 pool: AVE", x, xp)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (2, 3, 1, 1)
    np.testing.assert_allclose(y[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-12)
    check_gradient(layer, bottom, top)


def test_spp_follows_a_new_input_shape(xp):
    layer, bottom, top = _spp("pyramid_height: 2", distinct((1, 1, 4, 4)), xp)
    x = distinct((2, 1, 9, 7), 1)
    bottom[0].reshape(x.shape)
    bottom[0].data[...] = xp.asarray(x)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, _levels_by_pooling(x, 2, "MAX"), rtol=1e-12)


def test_spp_stochastic_test_phase(xp):
    x = np.abs(distinct((1, 2, 4, 4))) + 0.1
    layer, bottom, top = build_layer('type: "SPP" spp_param { pyramid_height: 1 '
                                     'pool: STOCHASTIC }', [x], xp=xp, phase=1)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y[:, :, 0, 0], (x ** 2).sum((2, 3)) / x.sum((2, 3)),
                               rtol=1e-6)


@pytest.mark.parametrize("params, shape, message", [
    ("pyramid_height: 2", (2, 3, 4), "must have 4 axes"),
    ("pyramid_height: 0", (1, 1, 4, 4), "pyramid_height must be at least 1"),
    # level 2 of H = 5: kernel 2, pad 2 -- Caffe's Pooling refuses it too
    ("pyramid_height: 3", (1, 1, 5, 8), "pyramid_height 3 is too high for a 5x8 bottom: level 2: pad .* must be smaller"),
])
def test_spp_errors(xp, params, shape, message):
    with pytest.raises(LayerSetupError, match=message):
        _spp(params, distinct(shape), xp)
