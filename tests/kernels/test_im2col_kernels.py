"""im2col.cu: im2col / col2im equal layers/_im2col.py's NumPy versions on random
1-D and 2-D geometries in both column layouts; Convolution, Deconvolution,
Im2col and InnerProduct take the kernel path (cuBLAS GEMMs with beta = 1,
kernels for the layouts and the bias) and equal their NumPy path, empty batch
included; every kernel of the family is used. Golden cases and gradient
checks run through the same path in tests/golden and tests/layers."""
import numpy as np
import pytest

from pycaffe_lowbit import kernels
from pycaffe_lowbit.layers import _im2col
from support.kernel_coverage import every_kernel, launches
from support.kernel_layers import assert_kernels_equal_numpy


def _geometry(rng, n_spatial):
    kernel = tuple(int(v) for v in rng.integers(1, 5, n_spatial))
    stride = tuple(int(v) for v in rng.integers(1, 4, n_spatial))
    pad = tuple(int(v) for v in rng.integers(0, 4, n_spatial))
    dilation = tuple(int(v) for v in rng.integers(1, 4, n_spatial))
    size = tuple(int(v) for v in rng.integers(1, 12, n_spatial))
    out = tuple(_im2col.conv_out_size(*a) for a in zip(size, kernel, stride, pad, dilation))
    return size, kernel, stride, pad, dilation, out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("n_spatial", [1, 2])
def test_im2col_and_col2im_equal_numpy(n_spatial, batch_first, dtype):
    rng = np.random.default_rng(n_spatial * 10 + batch_first)
    tried = 0
    while tried < 25:
        size, kernel, stride, pad, dilation, out = _geometry(rng, n_spatial)
        if min(out) < 1:
            continue
        tried += 1
        batch, channels = int(rng.integers(0, 4)), int(rng.integers(1, 4))
        geom = (kernel, stride, pad, dilation, out)
        x = rng.standard_normal((batch, channels) + size).astype(dtype)
        ref = _im2col.im2col(x, *geom, batch_first=batch_first)
        with launches() as seen:
            got = _im2col.im2col(x, *geom, batch_first=batch_first)
        assert seen == ({("im2col", "lowbit_im2col")} if got.size else set())
        np.testing.assert_array_equal(got, ref)
        col = rng.standard_normal(ref.shape).astype(dtype)
        ref_x = _im2col.col2im(col, x.shape, *geom, batch_first=batch_first)
        with kernels.emulate():
            got_x = _im2col.col2im(col, x.shape, *geom, batch_first=batch_first)
        np.testing.assert_array_equal(got_x, ref_x)   # the same sums in the same order


def test_col2im_overwrites_out_and_3d_stays_generic():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4, 3))
    geom = ((2, 2, 2), (1, 1, 1), (1, 0, 1), (1, 1, 1), (6, 3, 4))
    with launches() as seen:
        col = _im2col.im2col(x, *geom)
        out = np.full(x.shape, np.nan)
        _im2col.col2im(col, x.shape, *geom, out=out)
    assert not seen   # N-D (3 spatial axes) keeps the generic slice copies
    np.testing.assert_allclose(out, _im2col.col2im(col, x.shape, *geom))
    x2 = x[:, :, 0]
    with kernels.emulate():
        col2 = _im2col.im2col(x2, *(g[:2] for g in geom))
        out2 = np.full(x2.shape, np.nan)
        _im2col.col2im(col2, x2.shape, *(g[:2] for g in geom), out=out2)
    assert np.isfinite(out2).all()


CONV = [
    ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 pad: 1 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 3, 7, 5)),
    ('type: "Convolution" convolution_param { num_output: 6 kernel_h: 2 kernel_w: 3 '
     'stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2 group: 3 weight_filler { type: "gaussian" } '
     'bias_filler { type: "gaussian" } }', (3, 3, 9, 6)),
    ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 dilation: 2 '
     'stride: 3 bias_term: false weight_filler { type: "gaussian" } }', (2, 2, 11, 10)),
    ('type: "Convolution" convolution_param { num_output: 3 kernel_size: 3 stride: 2 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (0, 2, 7, 7)),
    ('type: "Convolution" convolution_param { num_output: 3 kernel_size: 2 pad: 1 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 2, 7)),
    ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 2 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 2, 3, 4, 3)),
    ('type: "Convolution" convolution_param { num_output: 5 kernel_size: 1 axis: 2 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 2, 3, 4, 5)),
    ('type: "Deconvolution" convolution_param { num_output: 4 kernel_size: 3 stride: 2 '
     'pad: 1 group: 2 weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }',
     (2, 2, 5, 4)),
    ('type: "Deconvolution" convolution_param { num_output: 3 kernel_h: 4 kernel_w: 2 '
     'stride: 3 dilation: 2 weight_filler { type: "gaussian" } '
     'bias_filler { type: "gaussian" } }', (1, 3, 3, 5)),
    ('type: "Deconvolution" convolution_param { num_output: 2 kernel_size: 2 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (0, 3, 4, 4)),
    ('type: "Im2col" convolution_param { kernel_size: 3 stride: 2 pad: 1 dilation: 2 }',
     (2, 3, 7, 6)),
    ('type: "InnerProduct" inner_product_param { num_output: 5 weight_filler '
     '{ type: "gaussian" } bias_filler { type: "gaussian" } }', (3, 2, 3, 3)),
    ('type: "InnerProduct" inner_product_param { num_output: 4 transpose: true axis: 2 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 3, 5, 1)),
    ('type: "InnerProduct" inner_product_param { num_output: 3 bias_term: false '
     'weight_filler { type: "gaussian" } }', (1, 7)),
    ('type: "InnerProduct" inner_product_param { num_output: 3 weight_filler '
     '{ type: "gaussian" } bias_filler { type: "gaussian" } }', (0, 7)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("text, shape", CONV)
def test_layers_kernel_path_equals_numpy(text, shape, dtype):
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    assert_kernels_equal_numpy(text, [x], dtype=dtype)


def test_two_bottoms_share_the_weights_and_accumulate():
    rng = np.random.default_rng(1)
    text = ('type: "Convolution" convolution_param { num_output: 3 kernel_size: 3 '
            'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    xs = [rng.standard_normal((2, 2, 6, 5)) for _ in range(2)]
    assert_kernels_equal_numpy(text, xs, n_top=2, dtype=np.float64)


def test_every_im2col_kernel_and_the_accumulating_blas_are_used():
    seen = set()
    for text, shape in CONV:
        seen |= assert_kernels_equal_numpy(text, [np.ones(shape)], dtype=np.float64)
    assert seen == every_kernel("im2col") | {("blas", "gemm"), ("blas", "gemv")}
