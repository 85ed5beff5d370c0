"""GEMM and GEMV with accumulation, for the layers' kernel paths.

    gemm(a, b, out, trans_a, trans_b, beta):  out = op(a) @ op(b) + beta * out
    gemv(a, x, out, trans, beta):             out = op(a) @ x + beta * out

On the device these are cuBLAS through CuPy (``cupy.cublas.gemm`` / ``gemv``):
with beta = 1 a parameter gradient accumulates straight into its diff, as
Caffe's ``caffe_gpu_gemm(..., 1., diff)``, with no weight-sized temporary.
Under emulation (NumPy arrays) the same contract runs on NumPy, after the
checks CuPy's wrappers make (2-D, one dtype, matching shapes), so a wrong
transpose or shape fails on the CPU as it would on the device.

``out`` must be C-contiguous: it is the diff itself (a view of it), written
in place. Emulated calls are counted in ``emulation.launched`` as ("blas",
"gemm") and ("blas", "gemv"), beside the kernels.
"""
import numpy as np

from ..core import backend
from . import emulation
from .source import KernelArgumentError

_ones = {}   # (array module, device, dtype) -> the longest ones vector made so far


def _op(a, trans):
    return a.T if trans else a


def _check(what, out, *arrays):
    if any(a.dtype != out.dtype for a in arrays):
        raise KernelArgumentError("%s: dtypes differ (%s)"
                                  % (what, ", ".join(str(a.dtype) for a in arrays + (out,))))
    if not out.flags.c_contiguous:
        raise KernelArgumentError("%s: out must be C-contiguous (strides %s)"
                                  % (what, out.strides))


def gemm(a, b, out, trans_a=False, trans_b=False, beta=1.0):
    """out (m, n) = op(a) (m, k) @ op(b) (k, n) + beta out, in place."""
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2:
        raise KernelArgumentError("gemm takes 2-D arrays (got %dD, %dD, out %dD)"
                                  % (a.ndim, b.ndim, out.ndim))
    _check("gemm", out, a, b)
    (m, k), (k2, n) = _op(a, trans_a).shape, _op(b, trans_b).shape
    if k != k2 or out.shape != (m, n):
        raise KernelArgumentError("gemm: op(a) %s @ op(b) %s does not give out %s"
                                  % ((m, k), (k2, n), out.shape))
    if not _done_without_cublas("gemm", out, k, beta,
                                lambda: np.matmul(_op(a, trans_a), _op(b, trans_b))):
        cublas = backend.cublas()
        cublas.gemm("T" if trans_a else "N", "T" if trans_b else "N", a, b, out=out,
                    alpha=1.0, beta=float(beta))
    return out


def gemv(a, x, out, trans=False, beta=1.0):
    """out = op(a) @ x + beta out, in place (a 2-D, x and out 1-D)."""
    if a.ndim != 2 or x.ndim != 1 or out.ndim != 1:
        raise KernelArgumentError("gemv takes a 2-D matrix and 1-D vectors")
    _check("gemv", out, a, x)
    rows, cols = _op(a, trans).shape
    if x.shape != (cols,) or out.shape != (rows,):
        raise KernelArgumentError("gemv: op(a) %s @ x %s does not give out %s"
                                  % ((rows, cols), x.shape, out.shape))
    if not _done_without_cublas("gemv", out, cols, beta, lambda: np.matmul(_op(a, trans), x)):
        cublas = backend.cublas()
        cublas.gemv("T" if trans else "N", 1.0, a, x, float(beta), out)
    return out


def _done_without_cublas(name, out, inner, beta, product):
    """Whatever needs no cuBLAS call, done: an empty out; an empty inner
    dimension (BLAS may return early, so out = beta out here); emulation
    (NumPy arrays: ``product()`` accumulated). True when done."""
    if out.size and inner == 0:
        out *= out.dtype.type(beta)
    if out.size == 0 or inner == 0:
        return True
    if backend.get_array_module(out) is not np:
        return False
    emulation.launched["blas", name] += 1
    _accumulate(product(), out, beta)
    return True


def _accumulate(product, out, beta):
    if beta == 0:
        out[...] = product
    else:
        if beta != 1:
            out *= out.dtype.type(beta)
        out += product


def gemm_groups(a, b, out, trans_a=False, trans_b=False, beta=1.0):
    """``gemm`` for each group g of 3-D a and b: out[g] = op(a[g]) op(b[g]) + beta out[g].
    ``out`` may have any shape of the right size (a weight diff): it is viewed as
    (groups, rows, cols), so it must be C-contiguous (a reshape would copy)."""
    if a.shape[0] != b.shape[0]:
        raise KernelArgumentError("gemm_groups: group counts differ (%d, %d)"
                                  % (a.shape[0], b.shape[0]))
    shape = (a.shape[0], a.shape[2 if trans_a else 1], b.shape[1 if trans_b else 2])
    if out.shape != shape:
        if not out.flags.c_contiguous or out.size != shape[0] * shape[1] * shape[2]:
            raise KernelArgumentError("gemm_groups: out %s (C-contiguous: %s) cannot hold "
                                      "the products %s" % (out.shape, out.flags.c_contiguous,
                                                           shape))
        out = out.reshape(shape)
    for g in range(out.shape[0]):
        gemm(a[g], b[g], out[g], trans_a, trans_b, beta)
    return out


def ones(n, dtype, xp):
    """A ones vector of length n (a prefix of one cached vector per module and dtype,
    Caffe's bias multiplier)."""
    device = None if xp is np else xp.cuda.runtime.getDevice()
    key = (xp.__name__, device, np.dtype(dtype).str)
    have = _ones.get(key)
    if have is None or have.size < n:
        have = _ones[key] = xp.ones(max(n, 1), dtype)
    return have[:n]


def add_channel_sums(dy, out):
    """out (C,) += sum over m and l of dy (M, C, L): a bias gradient.

    With M or L equal to 1 this is one GEMV into ``out`` (no temporary);
    otherwise the sums over l first go into an (M, C) vector of partial sums
    (activation-per-position sized, not a copy of dy), then one GEMV with beta 1."""
    if dy.size == 0:
        return out
    m, c = dy.shape[:2]
    xp = backend.get_array_module(dy)
    dy = xp.ascontiguousarray(dy).reshape(m, c, -1)
    length = dy.shape[2]
    if length == 1:
        return gemv(dy.reshape(m, c), ones(m, dy.dtype, xp), out, trans=True)
    if m == 1:
        return gemv(dy.reshape(c, length), ones(length, dy.dtype, xp), out)
    partial = xp.empty(m * c, dy.dtype)
    gemv(dy.reshape(m * c, length), ones(length, dy.dtype, xp), partial, beta=0.0)
    return gemv(partial.reshape(m, c), ones(m, dy.dtype, xp), out, trans=True)
