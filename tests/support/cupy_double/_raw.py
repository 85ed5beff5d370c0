"""``cupy.RawModule`` / ``cupy.RawKernel`` of the double: the package's ``.cu``
families, recognised by their source text, run as their host-compiled kernels
(``pycaffe_lowbit.kernels.emulation``) over the launch grid.

CuPy's launch rules kept: ``get_function`` only finds a name given in
``name_expressions`` (or a plain ``extern "C"``-style kernel name of the
source); a launch takes ``grid``, ``block`` (ints or tuples) and a tuple of
arguments, device arrays or scalars; a NumPy array argument is a TypeError; a
block over 1024 threads is CUDA's invalid-configuration error. Stricter than
CuPy: a strided (not C-contiguous) array argument is an error here, where a
device kernel would silently read it as dense memory."""
import numpy as np

from pycaffe_lowbit.kernels import emulation, source

from ._array import ndarray

MAX_THREADS_PER_BLOCK = 1024
MAX_GRID_X = 2 ** 31 - 1
compiled = []          # (family, options) of each RawModule compiled, for tests


class CUDADriverError(RuntimeError):
    """CuPy's ``cupy.cuda.driver.CUDADriverError``."""


def _family_of(code):
    for family in source.families():
        if source.read(family) == code:
            return family
    raise NotImplementedError("the CuPy double runs only the package's .cu families "
                              "(this source is none of them)")


class RawModule:
    """``RawModule(code=None, *, path=None, options=(), backend='nvrtc',
    translate_cucomplex=False, enable_cooperative_groups=False,
    name_expressions=None, jitify=None)``."""

    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc",
                 translate_cucomplex=False, enable_cooperative_groups=False,
                 name_expressions=None, jitify=None):
        if (code is None) == (path is None):
            raise TypeError("One of code or path must be given (not both)")
        if not isinstance(options, tuple):
            raise TypeError("Argument 'options' has incorrect type (expected tuple)")
        if path is not None:
            raise NotImplementedError("the CuPy double compiles sources only")
        self.family = _family_of(code)
        self.options = options
        self.name_expressions = tuple(name_expressions or ())
        compiled.append((self.family, options))

    def get_function(self, name):
        plain = source.kernels(self.family)
        if name not in self.name_expressions and name not in plain:
            raise CUDADriverError("CUDA_ERROR_NOT_FOUND: named symbol not found (%s)" % name)
        return RawKernel(None, name, module=self)


def _dims(value):
    dims = tuple(int(v) for v in (value if isinstance(value, tuple) else (value,)))
    if not 1 <= len(dims) <= 3 or any(d < 1 for d in dims):
        raise CUDADriverError("CUDA_ERROR_INVALID_VALUE: bad launch dimensions %s" % (value,))
    return dims


def _argument(value):
    if isinstance(value, ndarray):
        if value.size > 1 and not value._a.flags.c_contiguous:
            # CuPy passes data.ptr: the kernel would index a strided view as if dense
            raise ValueError("a kernel argument of strides %s is not C-contiguous: the "
                             "kernel would read it as dense memory (wrong values on a "
                             "device)" % (value.strides,))
        return value._a
    if isinstance(value, np.ndarray):
        raise TypeError("Unsupported type %s" % type(value))
    if isinstance(value, (np.generic, int, float, bool)):
        return value
    raise TypeError("Unsupported type %s" % type(value))


class RawKernel:
    """``RawKernel(code, name, options=(), ...)``; called as
    ``kernel(grid, block, args, *, shared_mem=0)``."""

    def __init__(self, code, name, options=(), backend="nvrtc", *, module=None, **_):
        self.module = module or RawModule(code=code, options=options, name_expressions=[name])
        self.name = name

    def __call__(self, grid, block, args, *, shared_mem=0):
        grid, block = _dims(grid), _dims(block)
        if int(np.prod(block)) > MAX_THREADS_PER_BLOCK:
            raise CUDADriverError("CUDA_ERROR_INVALID_VALUE: %d threads per block (at most "
                                  "%d)" % (int(np.prod(block)), MAX_THREADS_PER_BLOCK))
        if grid[0] > MAX_GRID_X or len(grid) > 1 and max(grid[1:]) > 65535:
            raise CUDADriverError("CUDA_ERROR_INVALID_VALUE: grid %s" % (grid,))
        if len(grid) > 1 or len(block) > 1:
            raise NotImplementedError("the host kernels run 1-D launches")
        if not isinstance(args, tuple):
            raise TypeError("Argument 'args' has incorrect type (expected tuple)")
        emulation.module(self.module.family).run(self.name, (grid, block),
                                                 tuple(_argument(a) for a in args))
