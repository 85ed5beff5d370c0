"""Compute backend: the array module (NumPy or CuPy), the device, the random source.

This is the only module that imports CuPy. Everything else asks for the array
module of the arrays it holds (``get_array_module``) or for the module of the
current mode (``array_module``), so one code path serves both backends; the
GPU-only paths (kernels, NCCL, cupyx) ask for ``cupy()``, ``cupyx()`` or
``nccl()``.

Caffe's global state lives here too: the mode (CPU/GPU), the device id, the
random seed that fillers, Dropout and stochastic layers draw from, and the
default blob dtype (float32, as in Caffe).
"""
import numpy as np

_state = {
    "mode": "cpu",
    "device": 0,
    "dtype": np.float32,
    "rng": np.random.default_rng(),
}


class BackendError(RuntimeError):
    """Raised when the GPU backend is asked for but cannot be used."""


def _import_cupy():
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise BackendError(
            "GPU mode needs CuPy: pip install 'pycaffe_lowbit[gpu]' "
            "(or the cupy wheel matching your CUDA)") from exc
    return cupy


def cupy():
    """The CuPy module (BackendError when it does not import)."""
    return _import_cupy()


def cupyx():
    """CuPy's extras module (``cupyx.scatter_add``...)."""
    _import_cupy()
    import cupyx as extras
    return extras


def cublas():
    """CuPy's cuBLAS wrappers (``cublas.gemm(..., out=, beta=)``: GEMMs that
    accumulate in place); imported on first use (it needs libcublas)."""
    _import_cupy()
    import cupy.cublas as wrappers
    return wrappers


def nccl():
    """CuPy's NCCL binding, or None when CuPy or NCCL is missing."""
    try:
        _import_cupy()
        from cupy.cuda import nccl as binding
    except (BackendError, ImportError):
        return None
    return binding if getattr(binding, "available", True) else None


def gpu_unavailable_reason():
    """Why the GPU backend cannot run here (None when it can): CuPy missing, or
    no usable CUDA device (CuPy's error, e.g. no driver)."""
    try:
        cupy = _import_cupy()
    except BackendError:
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
    """The array module that owns ``arrays`` (numpy unless one is a CuPy array)."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            return _import_cupy()
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
