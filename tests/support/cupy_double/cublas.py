"""``cupy.cublas`` of the double: ``gemm`` and ``gemv`` with CuPy's signatures
and its checks (asserts, as CuPy makes them), computed by NumPy.

One check is stricter than CuPy: ``gemv`` hands cuBLAS ``x.data.ptr`` and
``y.data.ptr`` with a stride of one element whatever the vectors' strides, so
a strided view gives wrong values on a device, silently; here it is an error."""
import numpy as np

from ._array import ndarray

_FLOAT_CHARS = "fdFD"


def _op(a, trans):
    trans = {"N": "n", "T": "t", "H": "h"}.get(trans, trans)
    if trans not in ("n", "t", "h", 0, 1, 2):
        raise TypeError("invalid transpose option: %r" % (trans,))
    if trans in ("t", 1):
        return a.T
    if trans in ("h", 2):
        return a.T.conj()
    return a


def _device(*arrays):
    for a in arrays:
        if not isinstance(a, ndarray):
            raise TypeError("Unsupported type %s" % type(a))


def gemm(transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
    """out = alpha op(a) @ op(b) + beta out."""
    _device(a, b)
    assert a.ndim == b.ndim == 2
    assert a.dtype == b.dtype
    if a.dtype.char not in _FLOAT_CHARS:
        raise TypeError("invalid dtype")
    opa, opb = _op(a._a, transa), _op(b._a, transb)
    assert opb.shape[0] == opa.shape[1]
    product = np.matmul(opa, opb) * a.dtype.type(alpha)
    if out is None:
        return ndarray._of(np.asfortranarray(product.astype(a.dtype)))
    _device(out)
    assert out.ndim == 2
    assert out.shape == product.shape
    assert out.dtype == a.dtype
    out._a[...] = product + a.dtype.type(beta) * out._a if beta else product
    return out


def gemv(transa, alpha, a, x, beta, y):
    """y = alpha op(a) @ x + beta y (y updated)."""
    _device(a, x, y)
    if a.dtype.char not in _FLOAT_CHARS:
        raise TypeError("invalid dtype")
    assert a.ndim == 2
    assert x.ndim == y.ndim == 1
    assert a.dtype == x.dtype == y.dtype
    for name, v in (("x", x), ("y", y)):
        if v.size > 1 and v.strides[0] != v.itemsize:
            raise ValueError("gemv: %s has a stride of %d bytes; cuBLAS reads it with a "
                             "stride of one element (wrong values on a device)"
                             % (name, v.strides[0]))
    opa = _op(a._a, transa)
    assert x.shape[0] == opa.shape[1]
    assert y.shape[0] == opa.shape[0]
    product = np.matmul(opa, x._a) * a.dtype.type(alpha)
    y._a[...] = product + a.dtype.type(beta) * y._a if beta else product
