"""pycaffe's small runtime helpers from ``_caffe``: ``Timer``, ``init_log``,
``log`` and ``has_nccl``, so scripts that call them run unchanged.

``caffe.Timer``: ``start()``, ``stop()``, and ``ms``, the milliseconds between
them (up to now while running), as Caffe's CPU timer. ``caffe.init_log()``,
``init_log(level)`` and ``init_log(level, stderr)`` start glog-format logging
on stderr at glog level ``level`` (0 INFO .. 3 FATAL; the ``stderr`` flag is
accepted: our log always goes there). ``caffe.log(text)`` writes one INFO line.
"""
import logging
import time
import warnings

from ..core import backend
from ..logs.glog import setup_logging

_GLOG_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR, 3: logging.CRITICAL}


class Timer:
    """Wall-clock timer with Caffe's Timer interface."""

    def __init__(self):
        self._start = None
        self._stop = None

    def start(self):
        self._start, self._stop = time.perf_counter(), None

    def stop(self):
        if self._start is not None and self._stop is None:
            self._stop = time.perf_counter()

    @property
    def ms(self):
        """Milliseconds from ``start()`` to ``stop()`` (to now if not stopped; 0 if never started)."""
        if self._start is None:
            return 0.0
        end = self._stop if self._stop is not None else time.perf_counter()
        return (end - self._start) * 1000.0


def init_log(level=None, stderr=True):
    """glog-format log lines on stderr; ``level`` is glog's minimum level (0-3)."""
    if level is not None and level not in _GLOG_LEVELS:
        raise ValueError("init_log: glog level must be 0 (INFO) to 3 (FATAL), got %r" % (level,))
    setup_logging(None if level is None else _GLOG_LEVELS[level])


def log(message):
    """One INFO line, as Caffe's ``LOG(INFO) << message``."""
    logging.getLogger("pycaffe_lowbit").info("%s", message)


def has_nccl():
    """Whether NCCL can be used here (CuPy with its NCCL binding and library);
    CuPy's warning that libnccl could not be loaded is the answer, not news."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return backend.nccl() is not None
