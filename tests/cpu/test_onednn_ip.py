"""InnerProduct's oneDNN engine (cpu/onednn_matmul, layers/_ip_onednn) against
the float64 BLAS path: Y, dX, dW (accumulated over two backwards) and db."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn, onednn_matmul

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")


def _pair(shape, ip_text, layer_type="InnerProduct"):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape)
    text = ('type: "%s" inner_product_param { %s weight_filler { type: "gaussian" } '
            'bias_filler { type: "gaussian" } }' % (layer_type, ip_text))
    l32, b32, t32 = build_layer(text, [x], dtype=np.float32)
    l64, b64, t64 = build_layer(text, [x], dtype=np.float64)
    for p32, p64 in zip(l32.blobs, l64.blobs):
        p32.data[...] = p64.data
    return (l32, b32, t32), (l64, b64, t64), rng


def _run(layer, bottom, top, dy):
    layer.forward(bottom, top)
    for p in layer.blobs:
        p.diff[...] = 0
    for _ in range(2):
        top[0].diff[...] = dy
        layer.backward(top, [True], bottom)
    return [np.array(top[0].data), np.array(bottom[0].diff)] + [np.array(p.diff)
                                                                  for p in layer.blobs]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,ip_text,layer_type", [
    ((4, 3, 2, 2), "num_output: 5", "InnerProduct"),
    ((1, 7), "num_output: 3", "InnerProduct"),
    ((6, 5), "num_output: 1 transpose: true", "InnerProduct"),
    ((2, 3, 4), "num_output: 6 axis: 2", "InnerProduct"),
    ((3, 8), "num_output: 4 bias_term: false", "InnerProduct"),
    ((3, 8), "num_output: 4", "BinaryInnerProduct"),
])
def test_three_products_match_float64(monkeypatch, threads, shape, ip_text, layer_type):
    """Every product through oneDNN (at two threads and more dW too; at one,
    dW on OpenBLAS), equal to the float64 path to float32 rounding; the
    parameter diffs summed over two backwards, as Caffe accumulates them."""
    monkeypatch.setattr(onednn, "threads", lambda: threads)
    calls = []
    real = onednn_matmul.gemm
    monkeypatch.setattr(onednn_matmul, "gemm",
                        lambda *a, **k: calls.append(k.get("accumulate", False)) or real(*a, **k))
    (l32, b32, t32), (l64, b64, t64), rng = _pair(shape, ip_text, layer_type)
    dy = rng.standard_normal(t64[0].shape)
    ours, ref = _run(l32, b32, t32, dy), _run(l64, b64, t64, dy)
    for name, a, r in zip(["y", "dx", "dW", "db"], ours, ref):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-5 * np.abs(r).max(), err_msg=name)
    assert calls.count(True) == (2 if threads > 1 else 0)     # dW: oneDNN's sum post-op
    assert calls.count(False) == 3                             # Y once, dX twice


def test_outputs_are_written_into_the_blobs_arrays():
    (l32, b32, t32), _, rng = _pair((4, 6), "num_output: 3")
    y_array, dx_array = t32[0].data, b32[0].diff
    l32.forward(b32, t32)
    t32[0].diff[...] = rng.standard_normal((4, 3))
    l32.backward(t32, [True], b32)
    assert t32[0].data is y_array and b32[0].diff is dx_array
    np.testing.assert_allclose(y_array, b32[0].data @ l32.blobs[0].data.T + l32.blobs[1].data,
                               rtol=1e-5)


def test_switch_and_float64_keep_the_blas_path(monkeypatch):
    monkeypatch.setattr(onednn_matmul, "gemm", lambda *a, **k: pytest.fail("oneDNN taken"))
    _, (l64, b64, t64), _ = _pair((2, 3), "num_output: 2")
    l64.forward(b64, t64)
    monkeypatch.setenv("LOWBIT_ONEDNN", "0")
    (l32, b32, t32), _, _ = _pair((2, 3), "num_output: 2")
    l32.forward(b32, t32)
    l32.backward(t32, [True], b32)


@pytest.mark.parametrize("a_shape,b_shape,transpose_a,transpose_b", [
    ((5, 7), (7, 3), False, False), ((1, 4), (4, 1), False, True), ((6, 2), (2, 9), True, True)])
def test_gemm_takes_strided_operands(a_shape, b_shape, transpose_a, transpose_b):
    """out = a @ b (+ bias), out += a @ b, with transposed views as operands."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal(a_shape[::-1] if transpose_a else a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape[::-1] if transpose_b else b_shape).astype(np.float32)
    a, b = (a.T if transpose_a else a), (b.T if transpose_b else b)
    bias = rng.standard_normal(b_shape[1]).astype(np.float32)
    ref = a.astype(np.float64) @ b
    out = np.empty((a_shape[0], b_shape[1]), np.float32)
    assert onednn_matmul.gemm(a, b, out, bias=bias)
    np.testing.assert_allclose(out, ref + bias, rtol=1e-5, atol=1e-5)
    assert onednn_matmul.gemm(a, b, out, accumulate=True)
    np.testing.assert_allclose(out, 2 * ref + bias, rtol=1e-5, atol=1e-5)
    assert not onednn_matmul.gemm(a.astype(np.float64), b, out)          # float32 only
    assert not onednn_matmul.gemm(a, b, np.empty((7, 7), np.float32))     # shapes checked
