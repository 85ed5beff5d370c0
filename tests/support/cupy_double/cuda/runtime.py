"""``cupy.cuda.runtime`` of the double: one device (id 0) with fixed properties."""

DEVICE_COUNT = 1
_current = {"device": 0}
TOTAL_MEMORY = 16 << 30


class CUDARuntimeError(RuntimeError):
    """CuPy's error type for a failed runtime call."""


def getDeviceCount():
    return DEVICE_COUNT


def _check(device):
    device = int(device)
    if not 0 <= device < DEVICE_COUNT:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    return device


def getDevice():
    return _current["device"]


def setDevice(device):
    _current["device"] = _check(device)


def getDeviceProperties(device):
    """cudaGetDeviceProperties as CuPy returns it: a dict, ``name`` as bytes."""
    _check(device)
    return {"name": b"CuPy double (NumPy on the host)", "totalGlobalMem": TOTAL_MEMORY,
            "major": 9, "minor": 0, "multiProcessorCount": 1, "clockRate": 1000000,
            "memoryClockRate": 1000000, "memoryBusWidth": 64, "l2CacheSize": 0,
            "maxThreadsPerBlock": 1024, "maxThreadsDim": (1024, 1024, 64),
            "maxGridSize": (2147483647, 65535, 65535), "warpSize": 32,
            "sharedMemPerBlock": 49152, "regsPerBlock": 65536, "totalConstMem": 65536,
            "pciBusID": 0, "pciDeviceID": 0, "pciDomainID": 0, "ECCEnabled": 0,
            "integrated": 0, "canMapHostMemory": 1, "concurrentKernels": 1,
            "computeMode": 0, "kernelExecTimeoutEnabled": 0, "asyncEngineCount": 1,
            "unifiedAddressing": 1, "textureAlignment": 512, "deviceOverlap": 1}


def memGetInfo():
    """(free, total) bytes."""
    from . import _default_pool
    return TOTAL_MEMORY - _default_pool().used_bytes(), TOTAL_MEMORY


def runtimeGetVersion():
    return 12000


def driverGetVersion():
    return 12000


def deviceSynchronize():
    return None
