"""A strict CuPy double for tests: CuPy's names (the part the package uses and
the NumPy functions CuPy shares), arrays holding NumPy memory that behave as
CuPy's do, kernels run on the host.

Point the package at it with ``LOWBIT_CUPY_MODULE=support.cupy_double``
(``tests/`` on the path) or the ``cupy_double`` fixture: ``set_mode_gpu()``
and ``--gpu 0`` then take every device branch on a CPU machine.

    _array.py     ndarray and CuPy's array rules (the list is in its docstring)
    _functions.py the functions (NumPy's, refusing host arrays), asnumpy...
    _raw.py       RawModule / RawKernel: the .cu families' host-compiled kernels
    cuda/         Device, runtime, Stream, Event, pinned memory, memory pool, nccl
    random.py     CuPy's generator API; cublas.py gemm/gemv; cupyx.py scatter_add

What it cannot show: timing, device memory limits (a pool limit can be set),
NCCL, NVRTC's own compilation (tests/kernels compile with NVRTC separately),
fused multiply-adds and block-level kernels (none are in the package).
"""
import numpy as _np

from . import cuda, random  # noqa: F401
from ._array import ndarray  # noqa: F401
from ._functions import (FUNCTIONS as _FUNCTIONS, LINALG as _LINALG, asnumpy,  # noqa: F401
                         get_array_module)
from ._raw import RawKernel, RawModule  # noqa: F401

__version__ = "14.0.0+double"
get_default_memory_pool = cuda._default_pool
get_default_pinned_memory_pool = cuda._default_pinned_pool
DOUBLE = True

globals().update(_FUNCTIONS)


class linalg:  # noqa: N801 - a module-like namespace, CuPy's cupy.linalg
    pass


for _name, _f in _LINALG.items():
    setattr(linalg, _name, staticmethod(_f))

# Types and constants are NumPy's own (CuPy aliases them too).
for _name in ("bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "float16", "float32", "float64", "complex64", "complex128", "intp",
              "uintp", "dtype", "generic", "number", "integer", "floating", "inexact",
              "signedinteger", "unsignedinteger", "complexfloating", "newaxis", "inf", "nan",
              "pi", "e", "finfo", "iinfo", "byte", "ubyte", "short", "ushort", "intc", "uintc",
              "longlong", "ulonglong", "single", "double", "half", "csingle", "cdouble",
              "float_", "int_", "complex_", "bool"):
    if hasattr(_np, _name):
        globals()[_name] = getattr(_np, _name)
