"""The double's ``ndarray``: NumPy memory behind CuPy's rules.

Each rule below is CuPy's (``cupy/_core/core.pyx``), restated here and tested
in ``tests/gpu_double/test_double_rules.py``:

* ``__array__`` raises TypeError: NumPy never converts a device array
  implicitly (``np.asarray(a)``, ``np.float32(a)``, a NumPy function CuPy
  does not dispatch); ``.get()`` / ``cupy.asnumpy`` copy to the host.
* Reductions, and indexing down to one element, give 0-d device arrays, never
  Python or NumPy scalars; ``float()``, ``int()``, ``bool()``, ``format()``,
  ``str()`` take the value (a synchronisation on a device); there is no
  ``__index__`` (a 0-d array is no list index, range bound or shape).
* An operand that is a ``numpy.ndarray`` (0-d included) is refused by every
  operator, ufunc and function: TypeError "Unsupported type"; host data enters
  only through ``cupy.array``/``asarray``/``ndarray.set``. Assigning a
  non-scalar NumPy array into a slice is CuPy's ValueError.
* NumPy functions dispatch through ``__array_function__`` to the double's
  function of the same name where CuPy has it (else NumPy's TypeError "no
  implementation found"); NumPy ufuncs through ``__array_ufunc__`` (only
  ``__call__``: ``np.add.at``/``reduce`` are not dispatched).
* Arrays are unhashable; ``data.ptr`` is the address of the first element (a
  host address here, read by the host-compiled kernels).
"""
import numbers

import numpy as np

from .cuda import _default_pool as get_default_memory_pool

SCALAR_TYPES = (numbers.Number, np.generic, bool)
IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")


def unsupported(value):
    return TypeError("Unsupported type %s" % type(value))


def unwrap(value):
    """A device argument as NumPy sees it: the double's arrays give their
    memory; a numpy.ndarray is refused; lists and tuples are searched."""
    if isinstance(value, ndarray):
        return value._a
    if isinstance(value, np.ndarray):
        raise unsupported(value)
    if isinstance(value, (list, tuple)):
        return type(value)(unwrap(v) for v in value)
    return value


def unwrap_key(key):
    """An index: device arrays give their memory; host index arrays are accepted
    (CuPy copies them to the device)."""
    if isinstance(key, ndarray):
        return key._a
    if isinstance(key, tuple):
        return tuple(unwrap_key(k) for k in key)
    return key


def wrap(value):
    """NumPy results as device values: arrays and NumPy scalars become arrays
    (0-d for a scalar); tuples and lists are wrapped item by item."""
    if isinstance(value, np.ndarray):
        return ndarray._of(value)
    if isinstance(value, np.generic):
        return ndarray._of(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(wrap(v) for v in value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def _advanced(key):
    """Whether an index is advanced (holds an array or a list)."""
    parts = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (ndarray, np.ndarray, list)) for k in parts)


class Flags:
    """CuPy's ``ndarray.flags``: c_contiguous, f_contiguous, owndata (read-only)."""

    def __init__(self, flags):
        self.c_contiguous = bool(flags.c_contiguous)
        self.f_contiguous = bool(flags.f_contiguous)
        self.owndata = bool(flags.owndata)

    def __getitem__(self, name):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[name]


class MemoryPointer:
    """``ndarray.data``: ``ptr`` (the first element's address), ``device_id``."""

    def __init__(self, array):
        self.ptr = int(array.__array_interface__["data"][0])
        self.device_id = 0

    @property
    def device(self):
        from .cuda import Device
        return Device(self.device_id)


def _method(name):
    def method(self, *args, **kwargs):
        return wrap(getattr(self._a, name)(*unwrap(args), **{k: unwrap(v)
                                                               for k, v in kwargs.items()}))
    method.__name__ = name
    return method


def _binary(name):
    def op(self, other):
        if not isinstance(other, (ndarray,) + SCALAR_TYPES):
            raise unsupported(other)
        return wrap(getattr(self._a, name)(unwrap(other)))
    op.__name__ = name
    return op


def _inplace(name):
    def op(self, other):
        if not isinstance(other, (ndarray,) + SCALAR_TYPES):
            raise unsupported(other)
        getattr(self._a, name)(unwrap(other))
        return self
    op.__name__ = name
    return op


def _unary(name):
    def op(self):
        return wrap(getattr(self._a, name)())
    op.__name__ = name
    return op


# cupy.ndarray's public methods that compute (CuPy's list; tested against it).
METHODS = ("all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose",
           "clip", "compress", "conj", "conjugate", "copy", "cumprod", "cumsum", "diagonal",
           "flatten", "max", "mean", "min", "nonzero", "partition", "prod", "ptp", "put",
           "ravel", "repeat", "reshape", "round", "searchsorted", "sort", "squeeze", "std",
           "sum", "swapaxes", "take", "trace", "transpose", "var", "view")
BINARY = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow",
          "lshift", "rshift", "and", "or", "xor", "lt", "le", "gt", "ge", "eq", "ne")
REFLECTED = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "divmod", "pow",
             "lshift", "rshift", "and", "or", "xor")
INPLACE = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift",
           "and", "or", "xor")


class ndarray:  # noqa: N801 - CuPy's name
    """A device array of the double (``cupy.ndarray``'s constructor and surface)."""

    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy double allocates its own memory")
        self._a = np.empty(shape, dtype, order=order)
        get_default_memory_pool()._track(self._a)

    @classmethod
    def _of(cls, array):
        """The device array over ``array`` (a new allocation is counted by the pool)."""
        out = cls.__new__(cls)
        out._a = array
        if array.base is None:
            get_default_memory_pool()._track(array)
        return out

    # -- attributes -----------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    T = property(lambda self: wrap(self._a.T))
    mT = property(lambda self: wrap(np.swapaxes(self._a, -1, -2)))
    real = property(lambda self: wrap(self._a.real))
    imag = property(lambda self: wrap(self._a.imag))
    flags = property(lambda self: Flags(self._a.flags))
    data = property(lambda self: MemoryPointer(self._a))
    base = property(lambda self: None if self._a.base is None else wrap(self._a.base))

    @shape.setter
    def shape(self, value):
        self._a.shape = value

    @property
    def device(self):
        from .cuda import Device
        return Device(0)

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "descr": self.dtype.descr,
                "version": 3, "strides": None if self._a.flags.c_contiguous else self.strides,
                "data": (MemoryPointer(self._a).ptr if self.size else 0, False)}

    # -- host copies ------------------------------------------------------------
    def get(self, stream=None, order="C", out=None, blocking=True):
        """A copy on the host (into ``out``, a NumPy array of this dtype and shape)."""
        if out is None:
            return np.array(self._a, order="F" if order == "F" else "C", copy=True)
        if not isinstance(out, np.ndarray):
            raise TypeError("Only numpy.ndarray can be obtained from cupy.ndarray")
        if out.dtype != self.dtype:
            raise TypeError("%s array cannot be obtained from %s array" % (out.dtype, self.dtype))
        if out.shape != self.shape:
            raise ValueError("Shape mismatch. Expected shape: %s, actual shape: %s"
                             % (self.shape, out.shape))
        out[...] = self._a
        return out

    def set(self, arr, stream=None):
        """Copy a host array of this dtype and shape in."""
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError("%s array cannot be set to %s array" % (arr.dtype, self.dtype))
        if self.shape != arr.shape:
            raise ValueError("Shape mismatch. Old shape: %s, new shape: %s"
                             % (self.shape, arr.shape))
        self._a[...] = arr

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._a.item()

    def tolist(self):
        return self._a.tolist()

    def tobytes(self, order="C"):
        return self._a.tobytes(order)

    def fill(self, value):
        if isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        if not isinstance(value, (ndarray,) + SCALAR_TYPES):
            raise unsupported(value)
        self._a.fill(unwrap(value))

    def dot(self, b, out=None):
        if not isinstance(b, ndarray) or (out is not None and not isinstance(out, ndarray)):
            raise TypeError("Argument 'b' has incorrect type (expected cupy.ndarray)")
        result = np.dot(self._a, b._a, out=None if out is None else out._a)
        return out if out is not None else wrap(result)

    # -- NumPy's protocols ------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError(IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from . import _functions
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = out[0]
            inout = inputs + out
        else:
            inout = inputs
        if method != "__call__":
            return NotImplemented
        function = _functions.UFUNCS.get(ufunc.__name__)
        if function is None:
            return NotImplemented
        for x in inout:
            if not isinstance(x, (ndarray, np.ndarray) + SCALAR_TYPES):
                return NotImplemented
        if ufunc.__name__ in ("greater", "greater_equal", "less", "less_equal", "equal",
                              "not_equal"):
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x
                           for x in inputs)
        return function(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from . import _functions
        function = _functions.lookup(func)
        if function is None or function is func:
            return NotImplemented
        if any(t not in (ndarray, np.ndarray) for t in types):
            return NotImplemented
        return function(*args, **kwargs)

    # -- Python's protocols ----------------------------------------------------------
    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __complex__(self):
        return complex(self._a)

    def __bool__(self):
        return bool(self._a)

    def __bytes__(self):
        return bytes(self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, key):
        return wrap(self._a[unwrap_key(key)])

    def __setitem__(self, key, value):
        """Basic indexing takes device arrays and scalars (a host array is CuPy's
        ValueError, a list its TypeError); advanced indexing (integer or boolean
        arrays, lists) copies host values to the device, as CuPy's scatter does.
        The empty slice ``a[:] = host`` is CuPy's one host copy by assignment:
        same dtype and shape into a contiguous array, else its ValueError."""
        if (isinstance(key, slice) and key == slice(None, None, None)
                and isinstance(value, np.ndarray)):
            if (value.dtype != self._a.dtype or value.shape != self._a.shape
                    or not (self._a.flags.c_contiguous or self._a.flags.f_contiguous)):
                raise ValueError("copying a numpy.ndarray to a cupy.ndarray by empty slice "
                                 "assignment must ensure arrays have same shape and dtype")
            self._a[...] = value
            return
        if _advanced(key) and isinstance(value, (np.ndarray, list, tuple)):
            value = np.asarray(unwrap(value) if not isinstance(value, np.ndarray) else value)
        elif isinstance(value, np.ndarray):
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
            value = value.item()
        elif not isinstance(value, (ndarray,) + SCALAR_TYPES):
            raise unsupported(value)
        self._a[unwrap_key(key)] = unwrap(value) if isinstance(value, ndarray) else value

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        from ._functions import array
        return array, (self.get(),)

    __neg__, __pos__ = _unary("__neg__"), _unary("__pos__")
    __abs__, __invert__ = _unary("__abs__"), _unary("__invert__")


for _name in METHODS:
    setattr(ndarray, _name, _method(_name))
for _name in BINARY:
    setattr(ndarray, "__%s__" % _name, _binary("__%s__" % _name))
for _name in REFLECTED:
    setattr(ndarray, "__r%s__" % _name, _binary("__r%s__" % _name))
for _name in INPLACE:
    setattr(ndarray, "__i%s__" % _name, _inplace("__i%s__" % _name))
