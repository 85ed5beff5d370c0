"""GEMM that accumulates into its output in place, on NumPy arrays.

    gemm_acc(a, b, out, beta=1):   out = a @ b + beta * out      (2-D, in place)

``a`` (m, k) and ``b`` (k, n) may be any views (transposes included); ``out``
(m, n) is written in place, as Caffe's ``caffe_cpu_gemm(..., beta, C)``: with
beta = 1 a parameter gradient accumulates straight into its diff, with no
weight-sized temporary and one pass over the diff instead of three
(``np.matmul(..., out=scratch)`` then ``diff += scratch``).

It is the BLAS ``sgemm`` / ``dgemm`` of SciPy (the one NumPy links against is
not exposed). A C-contiguous ``out`` is handed to Fortran BLAS as its
transpose (out^T = b^T a^T, F-contiguous, so no copy); an operand that is
neither C- nor F-contiguous is copied once. Without SciPy, for other dtypes,
or for a non-contiguous ``out``, the NumPy fallback computes the same sum
(``out *= beta; out += a @ b``).
"""
import numpy as np

try:  # pragma: no cover - exercised where SciPy is installed (a dependency)
    from scipy.linalg import blas as _blas
    _GEMM = {np.dtype(np.float32): _blas.sgemm, np.dtype(np.float64): _blas.dgemm}
except ImportError:  # pragma: no cover
    _GEMM = {}


def available():
    """True when the BLAS path is there (SciPy importable)."""
    return bool(_GEMM)


def _fortran(a):
    """(array, trans) with ``array`` F-contiguous and op(array) == a."""
    if a.flags.f_contiguous:
        return a, 0
    if a.flags.c_contiguous:
        return a.T, 1
    return np.asfortranarray(a), 0


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
    gemm = _GEMM.get(out.dtype)
    if (gemm is None or a.dtype != out.dtype or b.dtype != out.dtype or out.size == 0
            or k == 0 or not (out.flags.c_contiguous or out.flags.f_contiguous)):
        return gemm_acc_numpy(a, b, out, beta)
    if out.flags.f_contiguous:
        (fa, ta), (fb, tb), c = _fortran(a), _fortran(b), out
    else:   # out^T = b^T a^T, and out^T is F-contiguous
        (fa, ta), (fb, tb), c = _fortran(b.T), _fortran(a.T), out.T
    r = gemm(1.0, fa, fb, beta=float(beta), c=c, trans_a=ta, trans_b=tb, overwrite_c=1)
    if not np.shares_memory(r, c):   # pragma: no cover - f2py made a copy after all
        c[...] = r
    return out


def gemm_acc_groups(a, b, out, beta=1.0):
    """Per group i: out[i] = a[i] @ b[i] + beta * out[i] (3-D arrays), in place."""
    for i in range(out.shape[0]):
        gemm_acc(a[i], b[i], out[i], beta)
    return out
