"""Compute backend: the array module (NumPy or CuPy), the device, the random source.

This is the only module that imports CuPy. Everything else asks for the array
module of the arrays it holds (``get_array_module``) or for the module of the
current mode (``array_module``), so one code path serves both backends; the
GPU-only paths (kernels, NCCL, cupyx) ask for ``cupy()``, ``cupyx()`` or
``nccl()``.

Caffe's global state lives here too: the mode (CPU/GPU), the device id, the
random seed that fillers, Dropout and stochastic layers draw from, and the
default blob dtype (float32, as in Caffe).

``$LOWBIT_CUPY_MODULE`` names a module to import in CuPy's place (its
``cupyx``, ``cublas`` and ``cuda.nccl`` submodules standing for CuPy's): the
test suite's CuPy double (``support.cupy_double``), under which GPU mode runs
every device branch on a CPU machine.
"""
import importlib
import os
import sys

import numpy as np

_state = {
    "mode": "cpu",
    "device": 0,
    "dtype": np.float32,
    "rng": np.random.default_rng(),
}


class BackendError(RuntimeError):
    """Raised when the GPU backend is asked for but cannot be used."""


CUPY_MODULE_VARIABLE = "LOWBIT_CUPY_MODULE"


def _module_name(name):
    """The module imported for CuPy's ``name`` ("cupy", "cupyx", "cupy.cublas",
    "cupy.cuda.nccl"): CuPy's own, or the one $LOWBIT_CUPY_MODULE names."""
    stand_in = os.environ.get(CUPY_MODULE_VARIABLE)
    if not stand_in:
        return name
    return stand_in + ("." + name if name == "cupyx" else name[len("cupy"):])


def _import_cupy():
    name = _module_name("cupy")
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the machine
        if name != "cupy":
            raise BackendError("$%s names %s, which does not import: %s"
                               % (CUPY_MODULE_VARIABLE, name, exc)) from exc
        raise BackendError(
            "GPU mode needs CuPy: pip install 'pycaffe_lowbit[gpu]' "
            "(or the cupy wheel matching your CUDA)") from exc


def cupy():
    """The CuPy module (BackendError when it does not import)."""
    return _import_cupy()


def cupyx():
    """CuPy's extras module (``cupyx.scatter_add``...)."""
    _import_cupy()
    return importlib.import_module(_module_name("cupyx"))


def cublas():
    """CuPy's cuBLAS wrappers (``cublas.gemm(..., out=, beta=)``: GEMMs that
    accumulate in place); imported on first use (it needs libcublas)."""
    _import_cupy()
    return importlib.import_module(_module_name("cupy.cublas"))


def nccl():
    """CuPy's NCCL binding, or None when CuPy or NCCL is missing."""
    try:
        _import_cupy()
        binding = importlib.import_module(_module_name("cupy.cuda.nccl"))
    except (BackendError, ImportError):
        return None
    return binding if getattr(binding, "available", True) else None


def gpu_unavailable_reason():
    """Why the GPU backend cannot run here (None when it can): CuPy missing, or
    no usable CUDA device (CuPy's error, e.g. no driver)."""
    try:
        cupy = _import_cupy()
    except BackendError as exc:
        if os.environ.get(CUPY_MODULE_VARIABLE):
            return str(exc)
        return "CuPy is not installed (pip install 'pycaffe_lowbit[gpu]')"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:            # CUDARuntimeError: no driver, no device
        return "CuPy finds no usable CUDA device (%s)" % exc
    return None if count > 0 else "CuPy finds no CUDA device"


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    return gpu_unavailable_reason() is None


def device_count():
    """The number of CUDA devices (0 without CuPy or a device)."""
    return _import_cupy().cuda.runtime.getDeviceCount() if gpu_available() else 0


def device_properties(device_id):
    """cudaGetDeviceProperties of a device, as CuPy returns them (a dict)."""
    return _import_cupy().cuda.runtime.getDeviceProperties(int(device_id))


def set_mode_cpu():
    _state["mode"] = "cpu"


def set_mode_gpu():
    cupy = _import_cupy()
    cupy.cuda.Device(_state["device"]).use()
    _state["mode"] = "gpu"


def set_device(device_id):
    _state["device"] = int(device_id)
    if _state["mode"] == "gpu":
        _import_cupy().cuda.Device(int(device_id)).use()


def mode():
    return _state["mode"]


def array_module():
    """The array module of the current mode: numpy, or cupy in GPU mode."""
    return _import_cupy() if _state["mode"] == "gpu" else np


def get_array_module(*arrays):
    """The array module that owns ``arrays`` (numpy unless one is a CuPy array).
    No CuPy array exists before CuPy is imported, so it is not imported here."""
    for a in arrays:
        if a is None or isinstance(a, np.ndarray):
            continue
        cupy = sys.modules.get(_module_name("cupy"))
        if cupy is not None and isinstance(a, cupy.ndarray):
            return cupy
    return np


def to_numpy(a):
    """A NumPy array holding the values of ``a`` (no copy when already NumPy)."""
    if isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def to_device(a, xp):
    """``a`` as an array of module ``xp``."""
    if xp is np:
        return to_numpy(a)
    return xp.asarray(a)


def set_random_seed(seed):
    """Seed every random draw of the library (fillers, Dropout, stochastic layers)."""
    _state["rng"] = np.random.default_rng(int(seed))
    if _state["mode"] == "gpu":
        _import_cupy().random.seed(int(seed))


def rng():
    """The host random generator (numpy.random.Generator)."""
    return _state["rng"]


def default_dtype():
    return _state["dtype"]


def set_default_dtype(dtype):
    """Blob dtype for new nets: float32 as in Caffe; float64 for gradient checks."""
    _state["dtype"] = np.dtype(dtype).type
