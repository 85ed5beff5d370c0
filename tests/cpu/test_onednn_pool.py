"""Pooling's oneDNN engine (cpu/onednn_pool, layers/_pool_onednn) against the
float64 path: MAX and AVE, Caffe's ceil rule, padding, ties, and the cases kept
on the layer's own path (AVE's divisor at a ceil overhang with padding, the
mask top, engine CAFFE)."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn, onednn_pool

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")

CASES = [   # (x shape, pooling_param text, oneDNN's result is Caffe's)
    ((2, 8, 9, 9), "pool: MAX kernel_size: 3 stride: 2", True),            # ceil: 4 -> 4
    ((2, 8, 10, 10), "pool: MAX kernel_size: 3 stride: 2", True),          # ceil overhang
    ((2, 16, 10, 11), "pool: MAX kernel_size: 3 stride: 2 pad: 1", True),
    ((2, 8, 10, 10), "pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR", True),
    ((2, 8, 8, 8), "pool: AVE kernel_size: 3 stride: 1 pad: 1", True),     # include padding
    ((2, 8, 10, 10), "pool: AVE kernel_size: 3 stride: 2", True),          # exclude (no pad)
    ((2, 8, 10, 10), "pool: AVE kernel_size: 3 stride: 2 pad: 1", False),  # overhang + pad
    ((2, 8, 7, 7), "pool: AVE global_pooling: true", True),
    ((2, 8, 6, 6), "pool: MAX global_pooling: true", True),
    ((2, 3, 9, 9), "pool: MAX kernel_size: 3 stride: 2", True),  # 3 channels: not its jit
]


def compiled_kernels_here():
    """oneDNN's AVX-512 kernels run (not under ONEDNN_MAX_CPU_ISA=AVX2 or older,
    where the layers keep their path for pooling and LRN: oneDNN has plain loops)."""
    isa = onednn.lib().dnnl_cpu_isa2str(onednn.lib().dnnl_get_effective_cpu_isa())
    return b"avx512" in isa


def _pair(shape, text, n_top=1, values=None):
    x = np.random.default_rng(3).standard_normal(shape) if values is None else values
    layer_text = 'type: "Pooling" pooling_param { %s }' % text
    return (build_layer(layer_text, [x], n_top=n_top, dtype=np.float32),
            build_layer(layer_text, [x], n_top=n_top, dtype=np.float64))


def _run(layer, bottom, top, dy):
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    return np.array(top[0].data), np.array(bottom[0].diff)


@pytest.mark.parametrize("shape,text,takes", CASES)
def test_pooling_matches_float64(shape, text, takes):
    (l32, b32, t32), (l64, b64, t64) = _pair(shape, text)
    l64.reshape(b64, t64)
    dy = np.random.default_rng(4).standard_normal(t64[0].shape)
    y32, dx32 = _run(l32, b32, t32, dy)
    y64, dx64 = _run(l64, b64, t64, dy)
    if not takes:
        assert l32._onednn_pass is None
    elif compiled_kernels_here() and shape[1] >= 8:
        assert l32._onednn_pass is not None
    np.testing.assert_allclose(y32, y64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-6, atol=1e-6)


def test_max_ties_go_to_the_first_maximum_as_caffe():
    """Integer inputs full of equal maxima: the gradient goes to the first one
    in row-major order of the window (Caffe's strict >), bit for bit."""
    values = np.random.default_rng(5).integers(0, 3, (2, 8, 9, 9)).astype(np.float64)
    (l32, b32, t32), (l64, b64, t64) = _pair(values.shape, "pool: MAX kernel_size: 3 stride: 2",
                                             values=values)
    l64.reshape(b64, t64)
    dy = np.random.default_rng(6).integers(1, 5, t64[0].shape).astype(np.float64)
    y32, dx32 = _run(l32, b32, t32, dy)
    y64, dx64 = _run(l64, b64, t64, dy)
    assert l32._onednn_pass is not None or not compiled_kernels_here()
    np.testing.assert_array_equal(y32, y64)
    np.testing.assert_array_equal(dx32, dx64)


def test_mask_top_and_engine_caffe_keep_the_layers_path():
    (l32, b32, t32), _ = _pair((1, 2, 6, 6), "pool: MAX kernel_size: 2 stride: 2", n_top=2)
    l32.forward(b32, t32)
    assert l32._onednn_pass is None
    (l32, b32, t32), _ = _pair((1, 2, 6, 6), "pool: MAX kernel_size: 2 stride: 2 engine: CAFFE")
    l32.forward(b32, t32)
    assert l32._onednn_pass is None


def test_algorithm_choice():
    assert onednn_pool.algorithm("AVE", (10, 10), (3, 3), (2, 2), (1, 1), (6, 6))[0] is None
    assert onednn_pool.algorithm("AVE", (8, 8), (3, 3), (1, 1), (1, 1), (8, 8))[0] == \
        onednn.POOLING_AVG_INCLUDE_PADDING
    assert onednn_pool.algorithm("MAX", (4, 4), (2, 2), (2, 2), (1, 1), (3, 3))[0] == \
        onednn.POOLING_MAX
