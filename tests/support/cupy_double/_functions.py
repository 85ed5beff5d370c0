"""The double's functions: CuPy's names that NumPy also has, run by NumPy on
the arrays' memory.

``NAMES`` is the part of CuPy's namespace that NumPy shares (read from CuPy
14); ``tests/gpu_double/test_double_rules.py`` checks that each is in CuPy
and that every ``xp.f`` the package calls is here. Each function refuses a
``numpy.ndarray`` argument (CuPy's TypeError "Unsupported type"), except the
ones that bring host data to the device (``HOST_INPUT``: ``array``,
``asarray``...), and returns device arrays (0-d for a scalar result).
"""
import functools

import numpy as np

from ._array import ndarray, unsupported, unwrap, wrap

NAMES = """
abs absolute add all allclose amax amin angle any append arange arccos arccosh arcsin
arcsinh arctan arctan2 arctanh argmax argmin argpartition argsort argwhere around array
array_equal array_split asanyarray asarray ascontiguousarray asfortranarray atleast_1d
atleast_2d atleast_3d average bincount bitwise_and bitwise_not bitwise_or bitwise_xor
broadcast_arrays broadcast_to can_cast cbrt ceil choose clip column_stack compress
concatenate conj conjugate convolve copy copysign copyto corrcoef count_nonzero cos cosh
cov cross cumprod cumsum deg2rad degrees diag diagflat diagonal diff digitize divide
divmod dot dsplit dstack einsum empty empty_like equal exp exp2 expand_dims expm1
extract eye fabs fix flatnonzero flip fliplr flipud float_power floor floor_divide fmax
fmin fmod frexp frombuffer full full_like gcd greater greater_equal heaviside histogram
hsplit hstack hypot identity imag indices inner interp invert isclose iscomplex isfinite
isinf isnan isreal isscalar kron lcm ldexp left_shift less less_equal lexsort linspace
log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or logical_xor
logspace matmul max maximum may_share_memory mean median meshgrid min minimum mod modf
moveaxis multiply nan_to_num nanargmax nanargmin nancumprod nancumsum nanmax nanmean
nanmin nanprod nanstd nansum nanvar ndim negative nextafter nonzero not_equal ones
ones_like outer packbits pad partition percentile positive power prod ptp put
put_along_axis putmask quantile rad2deg radians ravel ravel_multi_index real reciprocal
remainder repeat reshape result_type right_shift rint roll rollaxis rot90 round
searchsorted select shape shares_memory sign signbit sin sinc sinh size sort split sqrt
square squeeze stack std subtract sum swapaxes take take_along_axis tan tanh tensordot
tile trace transpose tri tril triu true_divide trunc unique unpackbits unravel_index var
vdot vsplit vstack where zeros zeros_like
""".split()
LINALG_NAMES = ("det", "eigh", "inv", "matrix_power", "norm", "pinv", "qr", "slogdet",
                "solve", "svd")
# Functions that take host data: CuPy copies it to the device.
HOST_INPUT = {"array", "asarray", "asanyarray", "frombuffer"}


def _device_function(name, np_function):
    @functools.wraps(np_function)
    def function(*args, **kwargs):
        out = kwargs.get("out")
        if out is not None and not isinstance(out, ndarray):
            raise unsupported(out)
        result = np_function(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})
        if out is not None and isinstance(result, np.ndarray) and result is out._a:
            return out
        return wrap(result)
    function.__module__ = __name__
    function.__qualname__ = function.__name__ = name
    return function


def _host_function(name, np_function):
    def function(*args, **kwargs):
        return wrap(np.array(np_function(*args, **kwargs), copy=True))
    function.__module__ = __name__
    function.__qualname__ = function.__name__ = name
    return function


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, **_):
    """cupy.array: a new device array (always a copy of host data)."""
    if isinstance(obj, ndarray):
        obj = obj._a
    elif isinstance(obj, (list, tuple)):
        obj = unwrap(obj)
    return wrap(np.array(obj, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asarray(a, dtype=None, order=None, **_):
    """cupy.asarray: the array itself when already on the device (and of the
    dtype), else a device copy of the host data."""
    if isinstance(a, ndarray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return wrap(a._a.astype(dtype))
    if isinstance(a, (list, tuple)):
        a = unwrap(a)
    return wrap(np.array(a, dtype=dtype, order=order or "K", copy=True))


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """cupy.asnumpy: a host copy of a device array; a host array as it is."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    if out is not None:
        out[...] = a
        return out
    return np.asarray(a, order=order)


def get_array_module(*args):
    """This module when any argument is a device array, else NumPy."""
    import sys
    if any(isinstance(a, ndarray) for a in args):
        return sys.modules[__name__.rsplit(".", 1)[0]]
    return np


SPECIAL = {"array": array, "asarray": asarray, "asanyarray": asarray}
FUNCTIONS = {}
for _name in NAMES:
    FUNCTIONS[_name] = SPECIAL.get(_name) or (
        _host_function(_name, getattr(np, _name)) if _name in HOST_INPUT
        else _device_function(_name, getattr(np, _name)))
LINALG = {name: _device_function(name, getattr(np.linalg, name)) for name in LINALG_NAMES}
UFUNCS = {name: f for name, f in FUNCTIONS.items() if isinstance(getattr(np, name), np.ufunc)}


def lookup(np_function):
    """The double's function for a NumPy function (``__array_function__``): by
    its module path under the double and its name, as CuPy resolves it."""
    parts = np_function.__module__.split(".")[1:]
    if parts == []:
        table = FUNCTIONS
    elif parts == ["linalg"]:
        table = LINALG
    else:
        return None
    return table.get(np_function.__name__)
