"""cpu.im2col (Numba loop nests) against the NumPy slice-copy reference of
layers/_im2col (LOWBIT_NUMBA=0): bit-equal, float32 and float64, odd shapes,
strides, dilations, negative padding (the flipped backward's), empty inputs."""
import numpy as np
import pytest

from pycaffe_lowbit.cpu import im2col as cpu_im2col, jit
from pycaffe_lowbit.layers import _im2col
from pycaffe_lowbit.layers._im2col import col2im, conv_out_size, im2col

GEOMS = [  # (N, C, H, W), kernel, stride, pad, dilation
    ((2, 3, 7, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 2, 11, 13), (5, 3), (2, 3), (2, 0), (1, 2)),
    ((3, 1, 9, 9), (11, 11), (4, 4), (5, 5), (1, 1)),
    ((2, 4, 6, 6), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((1, 2, 8, 7), (3, 3), (1, 1), (-1, -1), (1, 1)),
    ((2, 2, 4, 5), (2, 2), (5, 5), (3, 1), (2, 1)),
    ((0, 2, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1)),
]


def _out(shape, k, s, p, d):
    return tuple(conv_out_size(*a) for a in zip(shape[2:], k, s, p, d))


@pytest.mark.skipif(not jit.available(), reason="numba missing")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMS)
def test_compiled_matches_numpy_reference(monkeypatch, dtype, geom):
    shape, k, s, p, d = geom
    out = _out(shape, k, s, p, d)
    if any(o <= 0 for o in out):
        pytest.skip("empty output")
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    ref = im2col(x, k, s, p, d, out)
    g = rng.standard_normal(ref.shape).astype(dtype)
    ref_back = col2im(g, x.shape, k, s, p, d, out)
    monkeypatch.setenv("LOWBIT_NUMBA", "1")
    if x.size:
        assert _im2col._compiled(x, k, ref, False)
    np.testing.assert_array_equal(im2col(x, k, s, p, d, out), ref)
    back = np.full(x.shape, np.nan, dtype)
    col2im(g, x.shape, k, s, p, d, out, out=back)
    np.testing.assert_array_equal(back, ref_back)
    if x.size:  # and the kernels by themselves
        col = np.full(ref.shape, np.nan, dtype)
        np.testing.assert_array_equal(cpu_im2col.im2col_2d(x, k, s, p, d, col), ref)


def test_fallback_when_turned_off(monkeypatch):
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    x = np.ones((1, 1, 4, 4), np.float32)
    col = np.empty((1, 3, 3, 1, 4, 4), np.float32)
    assert not _im2col._compiled(x, (3, 3), col, False)
    assert not jit.enabled()
    assert im2col(x, (3, 3), (1, 1), (1, 1), (1, 1), (4, 4)).sum() == 100   # 10 valid (o, j) pairs per axis


def test_not_supported_layouts_stay_on_numpy():
    x = np.ones((1, 2, 4, 4, 4), np.float32)
    assert not cpu_im2col.supported(x, (3, 3, 3), x)
    x = np.ones((1, 2, 4, 4), np.int32)
    assert not cpu_im2col.supported(x, (3, 3), x)
