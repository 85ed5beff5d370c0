"""What the benches say about the machine, and the thread count they run at."""
import os
import platform

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


def set_threads(n):
    """Every BLAS / OpenMP / Numba thread count to ``n``: call it before numpy
    (and torch) are imported, which read these variables once."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(n)


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo; else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
