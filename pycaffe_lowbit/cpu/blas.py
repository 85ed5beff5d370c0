"""GEMM that accumulates into its output in place, on NumPy arrays.

    gemm_acc(a, b, out, beta=1):   out = a @ b + beta * out      (2-D, in place)

``a`` (m, k) and ``b`` (k, n) may be any views (transposes included); ``out``
(m, n) is written in place, as Caffe's ``caffe_cpu_gemm(..., beta, C)``: with
beta = 1 a parameter gradient accumulates straight into its diff, with no
weight-sized temporary and one pass over the diff instead of three
(``np.matmul(..., out=scratch)`` then ``diff += scratch``).

It calls ``cblas_sgemm`` / ``cblas_dgemm`` of the OpenBLAS that NumPy's own
wheel bundles (``numpy.libs``), through ctypes: the same library, and the same
thread pool, as ``np.matmul`` (a second OpenBLAS, such as SciPy's, would start
its own threads, and two spinning pools on the same cores made 2-thread runs
5-10x slower). A view with a unit stride along one axis is passed as it is
(row-major, transposed or not, with its leading dimension); any other operand
is copied once. Where that library is not found (other NumPy builds), for
other dtypes, or for an ``out`` without a unit stride, the NumPy reference
``gemm_acc_numpy`` computes the same sum (``out *= beta; out += a @ b``).
"""
import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _find_cblas():
    """{dtype: (cblas gemm function, C int type)} from NumPy's bundled OpenBLAS."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    for path in sorted(glob.glob(os.path.join(here, "numpy.libs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:   # pragma: no cover
            continue
        found = {}
        for dtype, letter, real in ((np.float32, "s", ctypes.c_float),
                                    (np.float64, "d", ctypes.c_double)):
            for name, int_t in (("scipy_cblas_%sgemm64_" % letter, ctypes.c_int64),
                                ("cblas_%sgemm64_" % letter, ctypes.c_int64),
                                ("cblas_%sgemm" % letter, ctypes.c_int)):
                fn = getattr(lib, name, None)
                if fn is None:
                    continue
                if int_t is ctypes.c_int and "USE64BITINT" in _blas_config():
                    continue      # pragma: no cover - unprefixed ILP64: not guessed
                fn.restype = None
                fn.argtypes = [ctypes.c_int] * 3 + [int_t] * 3 + [
                    real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, real,
                    ctypes.c_void_p, int_t]
                found[np.dtype(dtype)] = (fn, int_t)
                break
        if len(found) == 2:
            return found
    return {}   # pragma: no cover


def _blas_config():
    try:
        return str(np.__config__.CONFIG["Build Dependencies"]["blas"])
    except Exception:   # pragma: no cover
        return ""


_GEMM = _find_cblas()


def available():
    """True when the BLAS path is there (NumPy's bundled OpenBLAS was found)."""
    return bool(_GEMM)


def _operand(a):
    """(trans, leading dimension, array) describing ``a`` to row-major CBLAS
    without a copy where one axis has unit stride; else a C copy."""
    it = a.itemsize
    r, c = a.shape
    s0, s1 = a.strides
    if s1 == it or c == 1:
        ld = s0 // it if r > 1 else c
        if r == 1 or (s0 > 0 and s0 % it == 0 and ld >= c):
            return _NO_TRANS, max(ld, 1), a
    if s0 == it or r == 1:
        ld = s1 // it if c > 1 else r
        if c == 1 or (s1 > 0 and s1 % it == 0 and ld >= r):
            return _TRANS, max(ld, 1), a
    return _NO_TRANS, max(c, 1), np.ascontiguousarray(a)


def gemm_acc_numpy(a, b, out, beta=1.0):
    """The reference: out = a @ b + beta * out, in place."""
    if beta == 0:
        np.matmul(a, b, out=out)
        return out
    if beta != 1:
        out *= out.dtype.type(beta)
    out += np.matmul(a, b)
    return out


def gemm_acc(a, b, out, beta=1.0):
    """out (m, n) = a (m, k) @ b (k, n) + beta * out, in place; returns out."""
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise ValueError("gemm_acc takes 2-D arrays (got %dD, %dD, out %dD)"
                         % (a.ndim, b.ndim, out.ndim))
    m, k = a.shape
    if b.shape[0] != k or out.shape != (m, b.shape[1]):
        raise ValueError("gemm_acc: a %s @ b %s does not give out %s"
                         % (a.shape, b.shape, out.shape))
    entry = _GEMM.get(out.dtype)
    if (entry is None or a.dtype != out.dtype or b.dtype != out.dtype or out.size == 0
            or k == 0):
        return gemm_acc_numpy(a, b, out, beta)
    it, n = out.itemsize, out.shape[1]
    if (out.strides[1] == it or n == 1) and (m == 1 or out.strides[0] >= n * it):
        c, ldc = out, (out.strides[0] // it if m > 1 else n)
    elif out.strides[0] == it or m == 1:   # out^T = b^T a^T, row-major
        a, b, c = b.T, a.T, out.T
        m, n = c.shape
        ldc = c.strides[0] // it if m > 1 else n
        if not (c.strides[1] == it or n == 1) or (m > 1 and ldc < n):
            return gemm_acc_numpy(b.T, a.T, out, beta)   # pragma: no cover
    else:
        return gemm_acc_numpy(a, b, out, beta)
    fn, int_t = entry
    ta, lda, a = _operand(a)
    tb, ldb, b = _operand(b)
    fn(_ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
       float(beta), c.ctypes.data, max(ldc, 1))
    return out


def gemm_acc_groups(a, b, out, beta=1.0):
    """Per group i: out[i] = a[i] @ b[i] + beta * out[i] (3-D arrays), in place."""
    for i in range(out.shape[0]):
        gemm_acc(a[i], b[i], out[i], beta)
    return out
