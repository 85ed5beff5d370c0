"""The kernels of this folder run on the CPU: the same ``.cu`` source, compiled
by the host C++ compiler under ``cuda_host.h`` (CUDA's built-ins as host
stand-ins), executed over the whole launch grid, one (block, thread) at a time.

This is how the GPU code is proven without a GPU: inside ``emulate()``, every
layer takes its kernel path on NumPy arrays (``kernels.active``), so the
golden cases, the layer tests and the float64 gradient checks run through the
kernels and are compared with the NumPy layers. Kernels that need block-level
synchronisation (``__shared__``, ``__syncthreads``) sit inside
``#ifndef LOWBIT_HOST`` in their file and are listed in ``DEVICE_ONLY``
(``kernels/__init__.py``); they wait for a device.

A family is compiled once (``c++ -O1 -shared``) into a cache folder keyed by
the hash of its source and of this harness (``$LOWBIT_KERNEL_CACHE``, default
``~/.cache/pycaffe_lowbit/host_kernels``), then loaded with ctypes. A launch
passes each argument as CUDA does, an array of pointers to the values.
"""
import collections
import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from . import source

HEADER = os.path.join(source.FOLDER, "cuda_host.h")
CXX_FLAGS = ("-std=c++17", "-O1", "-shared", "-fPIC", "-w")

_state = {"on": 0}
_libraries = {}
launched = collections.Counter()   # (family, kernel) -> emulated launches, for coverage tests


class HostCompileError(RuntimeError):
    """The host compiler rejected a family (the message holds its output)."""


def enabled():
    return _state["on"] > 0


@contextlib.contextmanager
def emulate():
    """Within this block, layers run their kernel path on NumPy arrays, the
    kernels executing on the CPU."""
    _state["on"] += 1
    try:
        yield
    finally:
        _state["on"] -= 1


def compiler():
    """The host C++ compiler: $CXX, else c++ / g++ / clang++ on PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise HostCompileError("no C++ compiler found (set CXX): the kernels cannot run on the CPU")


def _launchers(kernels):
    """extern "C" entry points, one per kernel instantiation:
    lowbit_host_<name>__<type>(grid, block, args)."""
    lines = []
    for kernel in kernels.values():
        for c_type in (source.FLOAT_TYPES if kernel.template else [None]):
            expr = kernel.expression(c_type) if c_type else kernel.name
            lines.append('extern "C" void %s(unsigned int g, unsigned int b, void** a) '
                         '{ lowbit_host::run(g, b, &%s, a); }' % (_symbol(expr), expr))
    return "\n".join(lines) + "\n"


def _symbol(expression):
    return "lowbit_host_" + expression.replace("<", "__").replace(">", "")


def _cache_folder():
    return os.environ.get("LOWBIT_KERNEL_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "pycaffe_lowbit", "host_kernels")


def host_kernels(family):
    """The family's kernels that the host build holds (DEVICE_ONLY ones excluded)."""
    text = source.read(family)
    everything = source.kernels(family, text)
    host = source.kernels(family, _host_view(text))
    return {name: everything[name] for name in host}


def _host_view(text):
    """The source as the host compiler sees it: ``#ifndef LOWBIT_HOST`` blocks
    dropped (a plain scan: those blocks must not nest other conditionals)."""
    out, skipping = [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("#ifndef LOWBIT_HOST"):
            skipping = True
        elif skipping and stripped.startswith("#endif"):
            skipping = False
        elif not skipping:
            out.append(line)
    return "\n".join(out)


def build(family):
    """Compile the family for the host (cached on disk); the library's path."""
    text = source.read(family)
    kernels = host_kernels(family)
    with open(HEADER) as f:
        header = f.read()
    unit = '#include "%s"\n%s\n%s' % (HEADER, text, _launchers(kernels))
    digest = hashlib.sha256((header + unit + " ".join(CXX_FLAGS)).encode()).hexdigest()[:20]
    folder = _cache_folder()
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, "%s-%s.so" % (family, digest))
    if os.path.exists(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, family + ".cpp")
        with open(src, "w") as f:
            f.write(unit)
        out = os.path.join(tmp, family + ".so")
        run = subprocess.run([compiler(), *CXX_FLAGS, src, "-o", out],
                             capture_output=True, text=True)
        if run.returncode:
            raise HostCompileError("%s.cu does not compile for the host:\n%s"
                                   % (family, (run.stdout + run.stderr)[-4000:]))
        os.replace(out, target)       # atomic: a concurrent build writes the same bytes
    return target


class HostModule:
    """A family compiled for the host; ``run`` launches like CuPy's RawKernel."""

    def __init__(self, family):
        self.family = family
        self.kernels = host_kernels(family)
        self.library = ctypes.CDLL(build(family))

    def run(self, expression, shape, args):
        """Launch ``expression`` (``lowbit_x<float>``) over ``shape`` = ((grid,),
        (block,)) with ``args`` already converted (``source.Param.convert``)."""
        launched[self.family, expression.split("<")[0]] += 1
        try:
            entry = getattr(self.library, _symbol(expression))
        except AttributeError:
            raise source.KernelArgumentError(
                "%s (%s.cu) is device-only (DEVICE_ONLY): it does not run on the CPU"
                % (expression, self.family)) from None
        cells = [_cell(a) for a in args]
        pointers = (ctypes.c_void_p * len(cells))(*[ctypes.addressof(c) for c in cells])
        entry(ctypes.c_uint(shape[0][0]), ctypes.c_uint(shape[1][0]), pointers)


def _cell(value):
    """A ctypes object holding what the kernel parameter receives."""
    if isinstance(value, np.ndarray):
        return ctypes.c_void_p(value.ctypes.data)
    return np.ctypeslib.as_ctypes(np.array(value))


def module(family):
    """The host build of the family (compiled and loaded once per process)."""
    if family not in _libraries:
        _libraries[family] = HostModule(family)
    return _libraries[family]
