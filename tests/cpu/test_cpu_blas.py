"""cpu.blas.gemm_acc (CBLAS gemm with beta into a C- or F-ordered out) against
its NumPy reference, and the layers that accumulate parameter gradients with
it: a diff that already holds values (iter_size > 1, shared parameters, a
pycaffe user's own writes) keeps them and gains the gradient."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import blas


def _operand(rng, shape, dtype, layout):
    a = rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "T":            # a transposed view of a C array
        return np.ascontiguousarray(a.T).T
    if layout == "strided":      # neither C nor F
        return np.repeat(a, 2, axis=1)[:, ::2]
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(3, 5, 7), (1, 1, 1), (17, 33, 9), (0, 4, 3), (4, 0, 3)])
@pytest.mark.parametrize("layouts", [("C", "C", "C"), ("T", "F", "C"), ("strided", "T", "F"),
                                     ("C", "strided", "F")])
@pytest.mark.parametrize("beta", [1.0, 0.0, 0.5])
def test_gemm_acc_matches_reference(dtype, m, k, n, layouts, beta):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = _operand(rng, (m, k), dtype, layouts[0])
    b = _operand(rng, (k, n), dtype, layouts[1])
    out = _operand(rng, (m, n), dtype, layouts[2])
    out0 = out.copy()
    ref = blas.gemm_acc_numpy(a, b, out.copy(), beta)
    res = blas.gemm_acc(a, b, out, beta)
    assert res is out
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * max(k, 1))
    exact = a.astype(np.float64) @ b.astype(np.float64) + beta * out0.astype(np.float64)
    np.testing.assert_allclose(out, exact, rtol=tol, atol=tol * max(k, 1))


def test_gemm_acc_integer_and_groups_fall_back():
    a = np.arange(6).reshape(2, 3)
    b = np.arange(12).reshape(3, 4)
    out = np.ones((2, 4), dtype=a.dtype)
    blas.gemm_acc(a, b, out)
    np.testing.assert_array_equal(out, a @ b + 1)
    rng = np.random.default_rng(0)
    a3, b3 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 4, 5))
    o3 = rng.standard_normal((2, 3, 5))
    ref = o3 + a3 @ b3
    blas.gemm_acc_groups(a3, b3, o3)
    np.testing.assert_allclose(o3, ref, rtol=1e-12)
    with pytest.raises(ValueError):
        blas.gemm_acc(a, b.T, out)


@pytest.mark.parametrize("proto", [
    'type: "InnerProduct" inner_product_param { num_output: 5 }',
    'type: "InnerProduct" inner_product_param { num_output: 5 transpose: true }',
    'type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 pad: 1 group: 2 }',
    'type: "Convolution" convolution_param { num_output: 4 kernel_size: 1 }',
    'type: "Deconvolution" convolution_param { num_output: 4 kernel_size: 3 stride: 2 group: 2 }',
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_param_diffs_accumulate_onto_existing_values(proto, dtype):
    """Two backwards onto a diff a user wrote: user value + 2 x the gradient."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 5, 5)).astype(dtype)
    layer, bottom, top = build_layer('name: "l" ' + proto, [x], dtype=dtype)
    for blob in layer.blobs:
        blob.data[...] = rng.standard_normal(blob.shape)
    layer.forward(bottom, top)
    top[0].diff[...] = rng.standard_normal(top[0].shape)
    for blob in layer.blobs:
        blob.diff[...] = 0
    layer.backward(top, [True], bottom)
    grads = [blob.diff.copy() for blob in layer.blobs]
    user = [rng.standard_normal(blob.shape).astype(dtype) for blob in layer.blobs]
    for blob, u in zip(layer.blobs, user):
        blob.diff[...] = u
    layer.backward(top, [True], bottom)
    layer.backward(top, [True], bottom)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for blob, u, g in zip(layer.blobs, user, grads):
        np.testing.assert_allclose(blob.diff, u + 2 * g, rtol=tol, atol=tol * 10)


def test_uses_numpys_own_blas():
    """The BLAS path is NumPy's bundled OpenBLAS (one thread pool with matmul)
    where the wheel has one; elsewhere the NumPy reference runs."""
    import glob
    import os
    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(np.__file__)),
                                  "numpy.libs", "*openblas*"))
    assert blas.available() == bool(libs)


@pytest.mark.parametrize("shape", [(1, 4, 3), (3, 4, 1), (1, 1, 5)])
def test_gemm_acc_degenerate_rows_and_columns(shape):
    m, k, n = shape
    rng = np.random.default_rng(7)
    a = rng.standard_normal((k, m)).astype(np.float32).T      # transposed views
    b = rng.standard_normal((n, k)).astype(np.float32).T
    out = rng.standard_normal((n, m)).astype(np.float32).T
    ref = out.astype(np.float64) + a.astype(np.float64) @ b
    blas.gemm_acc(a, b, out)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
