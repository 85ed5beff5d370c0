"""Compiling and launching the kernels of this folder on the device (CuPy).

``module(family)`` compiles ``<family>.cu`` once per device with NVRTC
(``cupy.RawModule``; every template kernel instantiated for float and double)
and caches it. ``launch(family, kernel, n, *args)`` runs ``kernel`` over ``n``
work items with Caffe's grid rule (``grid(n)``): ``THREADS`` threads per
block, ceil(n / THREADS) blocks. The float type of a template kernel is the
dtype of its first float array argument; every argument is checked against the
kernel's parameters first (``source.Param.convert``).

Under ``emulation.emulate()`` the same launches run the host-compiled kernels
on NumPy arrays (see ``emulation.py``).
"""
from ..core import backend
from . import emulation, source

THREADS = 512          # Caffe's CAFFE_CUDA_NUM_THREADS
NVRTC_OPTIONS = ("-std=c++14",)

_modules = {}          # (device id, family) -> cupy.RawModule
_signatures = {}       # family -> {name: Kernel}


def grid(n):
    """Caffe's CAFFE_GET_BLOCKS(n): enough blocks of THREADS for n items (at least 1)."""
    return max((int(n) + THREADS - 1) // THREADS, 1)


def signatures(family):
    """The family's kernels, parsed once."""
    if family not in _signatures:
        _signatures[family] = source.kernels(family)
    return _signatures[family]


def module(family):
    """The family compiled for the current device (cached)."""
    cupy = backend.cupy()
    key = (cupy.cuda.runtime.getDevice(), family)
    if key not in _modules:
        names = [e for k in signatures(family).values() for e in k.expressions()]
        _modules[key] = cupy.RawModule(code=source.read(family), options=NVRTC_OPTIONS,
                                       name_expressions=names)
    return _modules[key]


def float_type(kernel, args):
    """The C float type of a template kernel's launch: that of its first float
    array argument (float unless one is float64)."""
    for param, value in zip(kernel.params, args):
        if param.pointer and param.template:
            dtype = getattr(value, "dtype", None)
            for c_type, candidate in source.FLOAT_TYPES.items():
                if dtype == candidate:
                    return c_type
    return "float"


def prepare(family, name, args, dtype=None):
    """(Kernel, C float type, converted args) for a launch, checked. ``dtype``
    names the float type of a template kernel whose arrays do not show it
    (arrays reached through a table of addresses)."""
    kernels = signatures(family)
    if name not in kernels:
        raise source.KernelArgumentError("%s.cu has no kernel %s (it has %s)"
                                         % (family, name, ", ".join(sorted(kernels))))
    kernel = kernels[name]
    where = "kernel %s (%s.cu)" % (name, family)
    if len(args) != len(kernel.params):
        raise source.KernelArgumentError("%s takes %d arguments (%s), got %d"
                                         % (where, len(kernel.params),
                                            ", ".join(p.name for p in kernel.params),
                                            len(args)))
    c_type = float_type(kernel, args) if dtype is None else _c_type(dtype)
    dtype = source.FLOAT_TYPES[c_type]
    converted = tuple(p.convert(a, dtype, where) for p, a in zip(kernel.params, args))
    return kernel, c_type, converted


def _c_type(dtype):
    for c_type, candidate in source.FLOAT_TYPES.items():
        if candidate == dtype:
            return c_type
    raise source.KernelArgumentError("no kernel float type for dtype %s" % (dtype,))


def launch(family, name, n, *args, threads=THREADS, blocks=None, dtype=None):
    """Run kernel ``name`` of ``family`` over ``n`` work items (Caffe's grid, or
    ``blocks`` x ``threads`` for a kernel that needs its own); ``dtype``: see
    ``prepare``."""
    kernel, c_type, converted = prepare(family, name, args, dtype)
    if n <= 0:
        return
    shape = (blocks if blocks is not None else grid(n),), (threads,)
    if emulation.enabled():
        emulation.module(family).run(kernel.expression(c_type), shape, converted)
        return
    module(family).get_function(kernel.expression(c_type))(shape[0], shape[1], converted)
