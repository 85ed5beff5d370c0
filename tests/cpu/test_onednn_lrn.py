"""LRN's oneDNN engine (cpu/onednn_lrn, layers/_lrn_onednn) against the float64
path, and the cases kept on the layer's own path."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn
from test_onednn_pool import compiled_kernels_here

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")


def _run(layer, bottom, top, dy):
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    return np.array(top[0].data), np.array(bottom[0].diff)


@pytest.mark.parametrize("shape,params", [
    ((2, 16, 5, 6), "local_size: 5 alpha: 0.3 beta: 0.75 k: 2"),
    ((3, 32, 4, 3), "local_size: 5 alpha: 1.5 beta: 0.75 k: 1"),
    ((2, 48, 3, 3), "local_size: 5 alpha: 0.9 beta: 0.75 k: 1.5"),
    # not oneDNN 3.2's jit (channels % 16, local_size 5, beta 0.75): the layer's path
    ((2, 20, 3, 3), "local_size: 5 alpha: 0.9 beta: 0.75 k: 1"),
    ((2, 32, 3, 3), "local_size: 3 alpha: 0.9 beta: 0.75 k: 1"),
    ((2, 32, 3, 3), "local_size: 5 alpha: 0.9 beta: 1.3 k: 1"),
])
def test_across_channels_matches_float64_over_two_passes(shape, params):
    """Forward and backward twice (the second pass reuses the first's arrays)."""
    rng = np.random.default_rng(7)
    text = 'type: "LRN" lrn_param { %s }' % params
    l32, b32, t32 = build_layer(text, [np.zeros(shape)], dtype=np.float32)
    for _ in range(2):
        x = rng.standard_normal(shape)
        dy = rng.standard_normal(shape)
        b32[0].data[...] = x
        l64, b64, t64 = build_layer(text, [x], dtype=np.float64)
        y32, dx32 = _run(l32, b32, t32, dy)
        y64, dx64 = _run(l64, b64, t64, dy)
        if shape[1] % 16 == 0 and "local_size: 5" in params and "beta: 0.75" in params \
                and compiled_kernels_here():
            assert l32._onednn_pass is not None
        np.testing.assert_allclose(y32, y64, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(dx32, dx64, rtol=1e-5, atol=1e-5)


def test_within_channel_and_engine_caffe_keep_the_layers_path():
    x = np.ones((1, 4, 5, 5))
    for extra in ("norm_region: WITHIN_CHANNEL", "engine: CAFFE"):
        layer, bottom, top = build_layer('type: "LRN" lrn_param { local_size: 3 %s }' % extra,
                                         [x], dtype=np.float32)
        layer.forward(bottom, top)
        assert layer._onednn_pass is None
