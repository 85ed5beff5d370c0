"""Numba, when it is there and allowed: ``enabled()``, ``runs(*arrays)`` (the
compiled path takes these arrays) and the ``njit`` decorator.

``enabled()`` is read at every call (cheap), so ``LOWBIT_NUMBA=0`` in the
environment (or a test's monkeypatch) turns every compiled kernel off and the
layers take their NumPy path. Without Numba, ``njit`` returns the plain Python
function (never called by the layers then: they check ``enabled()`` first).
Kernels are compiled lazily on first use and cached on disk (``cache=True``),
so a later process loads them instead of compiling.
"""
import os

import numpy as np

try:
    import numba as _numba
except ImportError:  # pragma: no cover - numba is a dependency
    _numba = None


def available():
    """Numba is importable."""
    return _numba is not None


def enabled():
    """Numba is importable and not turned off by ``LOWBIT_NUMBA=0``."""
    return _numba is not None and os.environ.get("LOWBIT_NUMBA", "1") != "0"


def runs(*arrays):
    """The compiled kernels take these arrays: Numba on (``enabled()``), and
    each a non-empty NumPy array of a float dtype (``None`` entries, for an
    optional output, are skipped)."""
    return enabled() and all(
        isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size > 0
        for a in arrays if a is not None)


def njit(fn=None, **options):
    """``numba.njit(cache=True, **options)``; the function itself without Numba."""
    def wrap(f):
        if _numba is None:  # pragma: no cover
            return f
        opts = {"cache": True, "nogil": True}
        opts.update(options)
        return _numba.njit(**opts)(f)
    return wrap(fn) if fn is not None else wrap
