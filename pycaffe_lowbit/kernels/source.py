"""The kernel sources of this folder: reading a family's ``.cu`` file (with the
``common.cuh`` prelude) and the signatures of its ``__global__`` kernels.

A family file holds kernels of one layer family (``neuron.cu``...). A kernel
is ``template <typename T> __global__ void lowbit_<what>(params)`` with T the
float type, instantiated for float and double, or a plain (non-template)
``__global__`` function. Its parameters are parsed once, so that a launch can
check and convert every argument (``Param.convert``): a pointer takes a
C-contiguous array of the pointee's dtype, a value takes a scalar of its type.
A wrong dtype or a strided view fails here, on the CPU, with the kernel and
parameter named, instead of computing garbage on the device.
"""
import os
import re

import numpy as np

FOLDER = os.path.dirname(os.path.abspath(__file__))
PRELUDE = "common.cuh"
FLOAT_TYPES = {"float": np.dtype(np.float32), "double": np.dtype(np.float64)}

# C type -> NumPy dtype; "T" is the template's float type.
_C_TYPES = {
    "float": np.float32, "double": np.float64, "int": np.int32, "unsigned int": np.uint32,
    "unsigned": np.uint32, "long long": np.int64, "index_t": np.int64,
    "unsigned long long": np.uint64, "unsigned char": np.uint8, "char": np.int8,
    "signed char": np.int8, "bool": np.bool_, "short": np.int16,
}
_KERNEL = re.compile(r"(template\s*<\s*typename\s+(\w+)\s*>\s*)?__global__\s+void\s+(\w+)\s*"
                     r"\(([^)]*)\)", re.S)


class KernelSignatureError(ValueError):
    """A kernel parameter type this module cannot map to a NumPy dtype."""


class KernelArgumentError(TypeError):
    """A launch argument that does not fit the kernel's parameter."""


class Param:
    """One kernel parameter: its name, its C base type, and whether it is a pointer."""

    def __init__(self, text, template_name, where):
        words = text.replace("*", " * ").split()
        if len(words) < 2:
            raise KernelSignatureError("%s: cannot read parameter %r" % (where, text))
        self.name = words[-1]
        self.pointer = "*" in words
        base = " ".join(w for w in words[:-1]
                        if w not in ("const", "*", "__restrict__", "volatile"))
        self.template = base == template_name
        if not self.template and base not in _C_TYPES:
            raise KernelSignatureError("%s: parameter %s has type %r (known: T, %s)"
                                       % (where, self.name, base, ", ".join(sorted(_C_TYPES))))
        self.base = base

    def dtype(self, float_dtype):
        return np.dtype(float_dtype) if self.template else np.dtype(_C_TYPES[self.base])

    def convert(self, value, float_dtype, where):
        """``value`` as the kernel receives it: the array itself (checked) or a
        NumPy scalar of the parameter's type."""
        want = self.dtype(float_dtype)
        if self.pointer:
            dtype, flags = getattr(value, "dtype", None), getattr(value, "flags", None)
            if dtype is None or flags is None:
                raise KernelArgumentError("%s: parameter %s needs an array of %s, got %s"
                                          % (where, self.name, want, type(value).__name__))
            if dtype != want:
                raise KernelArgumentError("%s: parameter %s needs %s, got an array of %s"
                                          % (where, self.name, want, dtype))
            if not flags.c_contiguous:
                raise KernelArgumentError("%s: parameter %s needs a C-contiguous array "
                                          "(got strides %s)" % (where, self.name,
                                                                value.strides))
            return value
        if getattr(value, "ndim", 0):
            raise KernelArgumentError("%s: parameter %s is a %s value, got an array"
                                      % (where, self.name, want))
        return want.type(value)


class Kernel:
    """A ``__global__`` function of a family: its name, whether it is a template
    over the float type, and its parameters."""

    def __init__(self, family, name, template_name, params_text):
        self.family, self.name = family, name
        self.template = template_name is not None
        where = "kernel %s (%s.cu)" % (name, family)
        self.params = [Param(p.strip(), template_name, where)
                       for p in params_text.split(",") if p.strip()]

    def expression(self, c_type):
        """The name to compile and look up: ``lowbit_x<float>`` for a template."""
        return "%s<%s>" % (self.name, c_type) if self.template else self.name

    def expressions(self):
        return [self.expression(t) for t in FLOAT_TYPES] if self.template else [self.name]


def family_path(family):
    return os.path.join(FOLDER, family + ".cu")


def families():
    """Every kernel family of this folder (the ``.cu`` files), sorted."""
    return sorted(f[:-3] for f in os.listdir(FOLDER) if f.endswith(".cu"))


def read(family):
    """The family's source, prelude first (one translation unit)."""
    with open(os.path.join(FOLDER, PRELUDE)) as f:
        prelude = f.read()
    with open(family_path(family)) as f:
        return prelude + "\n#line 1 \"%s.cu\"\n" % family + f.read()


def kernels(family, source=None):
    """{name: Kernel} of the family's ``__global__`` functions."""
    source = read(family) if source is None else source
    found = {}
    for m in _KERNEL.finditer(_without_comments(source)):
        found[m.group(3)] = Kernel(family, m.group(3), m.group(2), m.group(4))
    return found


def _without_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)
