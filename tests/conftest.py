"""Test fixtures: every layer test runs on NumPy, and on CuPy where a GPU is present.

The tests mirror the package's folders (tests/core, tests/layers, ...), plus
tests/golden (official Caffe's and the forks' outputs), tests/seeds (the seed
files of ../shared) and tests/training (models that learn end to end). What
they share beyond these fixtures is in tests/support; data files are in
tests/fixtures."""
import contextlib
import logging
import os
import sys

# The tests multiply small matrices: a multi-threaded BLAS only adds thread
# hand-offs, and on a busy machine its spinning threads slow the suite tenfold.
# Set before NumPy loads; CLI subprocesses inherit it. Override by exporting it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pycaffe_lowbit import kernels  # noqa: E402
from pycaffe_lowbit.core import backend  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))  # tests/support importable as ``support``

try:  # the property tests' profiles (ci: derandomized and bounded; long: local runs)
    import support.hypothesis_profiles  # noqa: E402,F401
except ImportError:  # hypothesis absent: those tests skip
    pass

# numpy: the NumPy layers; kernels: NumPy arrays through the layers' CUDA
# kernel path, the kernels compiled for the host and run on the CPU
# (pycaffe_lowbit.kernels.emulation); cupy: a real GPU; double: GPU mode on
# the strict CuPy double (tests/support/cupy_double), only with
# LOWBIT_TEST_DOUBLE=1 (.ci/run's pass over the golden and layer tests).
_BACKENDS = [pytest.param("numpy", id="numpy"),
             pytest.param("kernels", id="kernels"),
             pytest.param("cupy", id="cupy", marks=pytest.mark.gpu)]
if os.environ.get("LOWBIT_TEST_DOUBLE"):
    _BACKENDS.append(pytest.param("double", id="double", marks=pytest.mark.double))


@pytest.fixture(params=_BACKENDS)
def xp(request):
    """The array module under test; the library is switched to its mode."""
    if request.param == "double":
        with cupy_double_mode() as double:
            yield double
        return
    if request.param == "cupy":
        if not backend.gpu_available():
            pytest.skip("no CUDA device / CuPy")
        backend.set_mode_gpu()
        yield backend.cupy()
    elif request.param == "kernels":
        backend.set_mode_cpu()
        with kernels.emulate():
            yield np
    else:
        backend.set_mode_cpu()
        yield np
    backend.set_mode_cpu()


@contextlib.contextmanager
def cupy_double_mode():
    """GPU mode on the CuPy double (``$LOWBIT_CUPY_MODULE``); the double's module."""
    old = os.environ.get(backend.CUPY_MODULE_VARIABLE)
    os.environ[backend.CUPY_MODULE_VARIABLE] = "support.cupy_double"
    try:
        backend.set_mode_gpu()
        backend.set_random_seed(1701)
        yield backend.cupy()
    finally:
        backend.set_mode_cpu()
        if old is None:
            del os.environ[backend.CUPY_MODULE_VARIABLE]
        else:
            os.environ[backend.CUPY_MODULE_VARIABLE] = old


@pytest.fixture
def cupy_double():
    """GPU mode on the strict CuPy double for one test; yields the double."""
    with cupy_double_mode() as double:
        yield double


@pytest.fixture(autouse=True)
def _reset_backend():
    backend.set_mode_cpu()
    backend.set_default_dtype(np.float32)
    backend.set_random_seed(1701)
    yield
    backend.set_mode_cpu()
    backend.set_default_dtype(np.float32)
    _reset_logger()


def _reset_logger():
    """Undo what an in-process CLI run does to the library logger (a glog
    handler, no propagation), so caplog works in every later test."""
    import logging
    logger = logging.getLogger("pycaffe_lowbit")
    for handler in list(logger.handlers):
        if getattr(handler, "_lowbit", False):
            logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


# -- log capture: the library's log messages, one string per line --------------
class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def loglines():
    logger = logging.getLogger("pycaffe_lowbit")
    handler = _Lines()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old)
