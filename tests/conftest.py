"""Test fixtures: every layer test runs on NumPy, and on CuPy where a GPU is present."""
import os
import sys

# The tests multiply small matrices: a multi-threaded BLAS only adds thread
# hand-offs, and on a busy machine its spinning threads slow the suite tenfold.
# Set before NumPy loads; CLI subprocesses inherit it. Override by exporting it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from pycaffe_lowbit.core import backend  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))  # tests/helpers importable

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
DATA = os.path.join(os.path.dirname(__file__), "data")

_BACKENDS = [pytest.param("numpy", id="numpy"),
             pytest.param("cupy", id="cupy", marks=pytest.mark.gpu)]


@pytest.fixture(params=_BACKENDS)
def xp(request):
    """The array module under test; the library is switched to its mode."""
    if request.param == "cupy":
        if not backend.gpu_available():
            pytest.skip("no CUDA device / CuPy")
        backend.set_mode_gpu()
        import cupy
        yield cupy
    else:
        backend.set_mode_cpu()
        yield np
    backend.set_mode_cpu()


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
