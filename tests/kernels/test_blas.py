"""kernels/blas.py: the accumulating GEMM / GEMV contract (out = op(a) op(b) +
beta out, in place), its checks, the bias-gradient sums; and a static check
that the calls it makes on the device fit CuPy's cuBLAS wrappers
(``cupy/cublas.py`` is read as source: it needs libcublas to import)."""
import ast
import importlib.util
import os

import numpy as np
import pytest

from pycaffe_lowbit.kernels import blas, source
from support import paths

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_gemm_accumulates_in_place(trans_a, trans_b, beta, dtype):
    m, k, n = 3, 5, 4
    a = RNG.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = RNG.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    out = RNG.standard_normal((m, n)).astype(dtype)
    want = (a.T if trans_a else a) @ (b.T if trans_b else b) + beta * out
    same = out
    blas.gemm(a, b, out, trans_a, trans_b, beta)
    assert out is same
    np.testing.assert_allclose(out, want, rtol=1e-5)


def test_gemm_with_an_empty_inner_dimension_scales_out_by_beta():
    out = np.ones((2, 3))
    blas.gemm(np.zeros((2, 0)), np.zeros((0, 3)), out, beta=0.5)
    np.testing.assert_array_equal(out, 0.5)
    y = np.ones(2)
    blas.gemv(np.zeros((2, 0)), np.zeros(0), y, beta=1.0)
    np.testing.assert_array_equal(y, 1.0)


@pytest.mark.parametrize("trans", [False, True])
def test_gemv_accumulates(trans):
    a = RNG.standard_normal((4, 3))
    x = RNG.standard_normal(4 if trans else 3)
    y = RNG.standard_normal(3 if trans else 4)
    want = (a.T if trans else a) @ x + y
    blas.gemv(a, x, y, trans)
    np.testing.assert_allclose(y, want)


@pytest.mark.parametrize("call, message", [
    (lambda: blas.gemm(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3))),
     r"op\(a\) \(2, 3\) @ op\(b\) \(2, 3\) does not give out"),
    (lambda: blas.gemm(np.zeros((2, 3)), np.zeros((3, 2), np.float32), np.zeros((2, 2))),
     "dtypes differ"),
    (lambda: blas.gemm(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 2)).T),
     "out must be C-contiguous"),
    (lambda: blas.gemm(np.zeros(3), np.zeros((3, 2)), np.zeros(2)), "gemm takes 2-D"),
    (lambda: blas.gemv(np.zeros((2, 3)), np.zeros(2), np.zeros(3)), "does not give out"),
    (lambda: blas.gemm_groups(np.zeros((2, 2, 3)), np.zeros((1, 3, 2)), np.zeros((2, 2, 2))),
     "group counts differ"),
    (lambda: blas.gemm_groups(np.zeros((2, 2, 3)), np.zeros((2, 3, 2)), np.zeros((8, 2)).T),
     r"out \(2, 8\) \(C-contiguous: False\) cannot hold the products \(2, 2, 2\)"),
])

def test_wrong_calls_fail_before_the_device(call, message):
    with pytest.raises(source.KernelArgumentError, match=message):
        call()

def test_gemm_groups_accumulate_into_a_weight_shaped_out():
    a, b = RNG.standard_normal((2, 3, 5)), RNG.standard_normal((2, 4, 5))
    out = np.ones((6, 2, 2))        # (O, C / g, kh, kw) of a 2-group convolution, say
    blas.gemm_groups(a, b, out, trans_b=True)
    np.testing.assert_allclose(out.reshape(2, 3, 4), 1 + a @ b.transpose(0, 2, 1))


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 4, 5), (3, 4, 1), (1, 1, 1), (0, 4, 5),
                                   (3, 4, 0)])
def test_channel_sums_accumulate(shape):
    dy = RNG.standard_normal(shape)
    out = np.full(shape[1], 2.0)
    blas.add_channel_sums(dy, out)
    np.testing.assert_allclose(out, 2.0 + dy.sum(axis=(0, 2)))


def test_ones_reuse_one_vector():
    a, b = blas.ones(5, np.float32, np), blas.ones(3, np.float32, np)
    assert a.dtype == np.float32 and (a == 1).all() and b.base is a.base


# -- the device calls fit cupy.cublas ---------------------------------------------
def _cupy_cublas_signatures():
    spec = importlib.util.find_spec("cupy")
    if spec is None:
        if os.environ.get("LOWBIT_REQUIRE_CUPY"):
            raise ImportError("cupy is not installed")
        pytest.skip("CuPy not installed (pip install cupy-cuda12x)")
    path = os.path.join(os.path.dirname(spec.origin), "cublas.py")
    tree = ast.parse(open(path).read(), path)
    return {f.name: f.args for f in tree.body if isinstance(f, ast.FunctionDef)}


def _cublas_calls():
    """(where, function, n positional, keywords) of every ``cublas.<f>(...)``."""
    folder = os.path.join(paths.ROOT, "pycaffe_lowbit", "kernels")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path).read(), path)):
                func = getattr(node, "func", None)
                if isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and \
                        isinstance(func.value, ast.Name) and func.value.id == "cublas":
                    yield ("%s:%d" % (name, node.lineno), func.attr, len(node.args),
                           [k.arg for k in node.keywords])


def test_device_calls_fit_cupys_cublas_wrappers():
    signatures = _cupy_cublas_signatures()
    calls = list(_cublas_calls())
    assert {c[1] for c in calls} == {"gemm", "gemv"}
    for where, name, n_positional, keywords in calls:
        assert name in signatures, "%s: cupy.cublas has no %s" % (where, name)
        params = [a.arg for a in signatures[name].args]
        assert n_positional <= len(params), "%s: too many arguments to %s" % (where, name)
        for k in keywords:
            assert k in params[n_positional:], "%s: %s takes no keyword %s" % (where, name, k)
        required = len(params) - len(signatures[name].defaults)
        assert n_positional + len(keywords) >= required, "%s: %s misses arguments" % (where,
                                                                                   name)
    assert [a.arg for a in signatures["gemm"].args] == \
        ["transa", "transb", "a", "b", "out", "alpha", "beta"]
    assert [a.arg for a in signatures["gemv"].args] == \
        ["transa", "alpha", "a", "x", "beta", "y"]
