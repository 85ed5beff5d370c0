"""Numba, when it is there and allowed: ``enabled()``, ``runs(*arrays)`` (the
compiled path takes these arrays) and the ``njit`` decorator.

``enabled()`` is read at every call (cheap), so ``LOWBIT_NUMBA=0`` in the
environment (or a test's monkeypatch) turns every compiled kernel off and the
layers take their NumPy path. Without Numba, ``njit`` returns the plain Python
function (never called by the layers then: they check ``enabled()`` first).
Numba itself is imported only when a kernel is first needed (``runs()`` with
arrays a kernel takes, or a kernel's first call), so ``import pycaffe_lowbit``
does not pay its ~90 MiB. Kernels are compiled on first use and cached on disk
(``cache=True``), so a later process loads them instead of compiling.

A kernel made with ``parallel=True`` splits its ``prange`` loops over Numba's
threads (the ``omp`` layer: GNU OpenMP's threads, the ones oneDNN uses); before
each call its thread count is set to OpenMP's (``cpu.onednn.threads()``, the
one ``OMP_NUM_THREADS`` setting), capped at ``NUMBA_NUM_THREADS``. Its module
defines ``prange = range`` (the loop without Numba); ``numba.prange`` replaces
it in the module's globals when the kernel is compiled.
"""
import importlib
import os

import numpy as np

_numba = None          # the module, once imported
_numba_tried = False   # the import was attempted (it costs ~90 MiB and ~0.3 s: not at import)


def _load_numba():
    """Import Numba on first need; ``None`` when it is not installed."""
    global _numba, _numba_tried
    if not _numba_tried:
        _numba_tried = True
        try:
            _numba = importlib.import_module("numba")
        except ImportError:  # pragma: no cover - numba is a dependency
            _numba = None
    return _numba


def available():
    """Numba is importable (imports it)."""
    return _load_numba() is not None


def enabled():
    """Numba is importable and not turned off by ``LOWBIT_NUMBA=0`` (which
    never imports it)."""
    return os.environ.get("LOWBIT_NUMBA", "1") != "0" and available()


def runs(*arrays):
    """The compiled kernels take these arrays: Numba on (``enabled()``), and
    each a non-empty NumPy array of a float dtype (``None`` entries, for an
    optional output, are skipped)."""
    return all(isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size > 0
               for a in arrays if a is not None) and enabled()


class LazyKernel:
    """A function to compile with ``numba.njit(**options)`` on its first call
    (Numba is imported then, not when the module defining it is). Calls
    before Numba is usable run the plain Python function."""

    def __init__(self, fn, options):
        self.py_func = fn
        self.options = options
        self._dispatcher = None
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def dispatcher(self):
        """Numba's dispatcher (compiling nothing yet); ``None`` without Numba."""
        if self._dispatcher is None and available():
            if self.options.get("parallel"):
                self.py_func.__globals__["prange"] = _numba.prange
            self._dispatcher = _numba.njit(**self.options)(self.py_func)
        return self._dispatcher

    @property
    def signatures(self):
        return self.dispatcher.signatures if self.dispatcher is not None else []

    def __call__(self, *args, **kwargs):
        dispatcher = self._dispatcher or self.dispatcher
        if dispatcher is not None and self.options.get("parallel"):
            match_threads()
        return (dispatcher or self.py_func)(*args, **kwargs)


def match_threads():
    """Numba's thread count for this Python thread := OpenMP's
    (``cpu.onednn.threads()``), at most ``NUMBA_NUM_THREADS``."""
    from . import onednn
    n = max(1, min(onednn.threads(), _numba.config.NUMBA_NUM_THREADS))
    if _numba.get_num_threads() != n:
        _numba.set_num_threads(n)
    return n


def njit(fn=None, **options):
    """``numba.njit(cache=True, nogil=True, **options)``, applied lazily: the
    result compiles on its first call, and runs the function itself without Numba."""
    def wrap(f):
        opts = {"cache": True, "nogil": True}
        opts.update(options)
        return LazyKernel(f, opts)
    return wrap(fn) if fn is not None else wrap
