"""LRN's oneDNN engine (cpu/onednn_lrn, layers/_lrn_onednn) against the float64
path, and the cases kept on the layer's own path."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn
from test_onednn_pool import _run, compiled_kernels_here

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")


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


def _reference_backward(x, dy, size, alpha, beta, k):
    """Caffe's ACROSS_CHANNELS gradient in float64, windows summed directly."""
    half, channels = (size - 1) // 2, x.shape[1]

    def window(a):
        return np.stack([a[:, max(c - half, 0):c + half + 1].sum(1) for c in range(channels)], 1)
    s = k + alpha / size * window(x * x)
    y = x * s ** -beta
    return dy * s ** -beta - 2 * alpha * beta / size * x * window(dy * y / s)


@pytest.mark.skipif(not compiled_kernels_here(), reason="oneDNN's jit LRN not on this CPU")
def test_forward_keeps_no_state_unless_in_place(monkeypatch):
    """A separate top: oneDNN's inference forward, nothing kept, the backward
    recomputed in chunks (CHUNK_BYTES made small: one image, then two). In
    place (the bottom is overwritten): oneDNN's training forward keeps its
    workspace. Every way gives the same numbers."""
    from pycaffe_lowbit.cpu import onednn_lrn
    from pycaffe_lowbit.core.blob import Blob
    text = 'type: "LRN" lrn_param { local_size: 5 alpha: 0.3 beta: 0.75 k: 2 }'
    rng = np.random.default_rng(5)
    shape = (3, 16, 5, 6)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    layer, bottom, top = build_layer(text, [x], dtype=np.float32)
    y, dx = _run(layer, bottom, top, dy)
    assert layer._onednn_pass[1] is None
    np.testing.assert_allclose(dx, _reference_backward(x, dy, 5, 0.3, 0.75, 2.0),
                               rtol=2e-5, atol=2e-6)

    blob = Blob(shape, dtype=np.float32)
    blob.data[...] = x
    layer.reshape([blob], [blob])
    layer.forward([blob], [blob])
    assert layer._onednn_pass[1] is not None
    blob.diff[...] = dy
    layer.backward([blob], [True], [blob])
    np.testing.assert_allclose(blob.diff, dx, rtol=1e-5, atol=1e-6)

    np.testing.assert_allclose(blob.data, y, rtol=1e-6)

    for chunk_images in (1, 2):
        monkeypatch.setattr(onednn_lrn, "CHUNK_BYTES",
                            layer._onednn_pass[0].ws_bytes // shape[0] * chunk_images)
        layer, bottom, top = build_layer(text, [x], dtype=np.float32)
        y2, dx2 = _run(layer, bottom, top, dy)
        assert layer._onednn_pass[1] is None
        np.testing.assert_allclose(y2, y, rtol=1e-6)
        np.testing.assert_allclose(dx2, dx, rtol=1e-5, atol=1e-6)
