"""Launches of eltwise.cu: Eltwise's SUM, PROD and MAX over a list of bottoms,
folded a pair at a time. Each function returns new arrays, as the NumPy layer
hands new arrays to its blobs."""
from ..core import backend
from .loader import launch


def _new(like, dtype=None):
    return backend.get_array_module(like).empty(like.shape, dtype or like.dtype)


def _run(kernel, x, *args):
    launch("eltwise", kernel, x.size, x.size, x, *args)


def total(xs, coeffs):
    """y = sum_i coeffs[i] xs[i]."""
    y = _new(xs[0])
    _run("lowbit_eltwise_sum", xs[0], coeffs[0], xs[1], coeffs[1], y)
    for x, c in zip(xs[2:], coeffs[2:]):
        _run("lowbit_eltwise_sum", y, 1.0, x, c, y)
    return y


def scaled(dy, coeff):
    """dx = coeff dy (SUM's gradient)."""
    dx = _new(dy)
    _run("lowbit_eltwise_scale", dy, coeff, dx)
    return dx


def product(xs, last=None):
    """y = prod_i xs[i] (times ``last`` if given, multiplied in at the end); at
    least two factors."""
    factors = list(xs) + ([last] if last is not None else [])
    y = _new(factors[0])
    _run("lowbit_eltwise_prod", factors[0], factors[1], y)
    for x in factors[2:]:
        _run("lowbit_eltwise_prod", y, x, y)
    return y


def quotient(y, x, dy):
    """dx = y / x dy (PROD's gradient without stable_prod_grad)."""
    dx = _new(dy)
    _run("lowbit_eltwise_prod_quotient", y, x, dy, dx)
    return dx


def maximum(xs):
    """(y = max_i xs[i], the int32 mask of the winning bottom)."""
    y, mask = _new(xs[0]), _new(xs[0], "int32")
    for i, x in enumerate(xs[1:], 1):
        _run("lowbit_eltwise_max_fwd", xs[0] if i == 1 else y, x, i, y, mask)
    return y, mask


def max_grad(dy, mask, index):
    """dx = dy where bottom ``index`` won, else 0."""
    dx = _new(dy)
    _run("lowbit_eltwise_max_bwd", dy, mask, index, dx)
    return dx
