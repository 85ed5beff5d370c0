"""Caffe-style (glog) log lines: ``I1123 09:19:57.588207 29238 net.py:120] message``.

The library logs to the ``pycaffe_lowbit`` logger and stays quiet (WARNING)
unless asked; the CLI turns on INFO as Caffe does. ``GLOG_minloglevel`` (0 INFO,
1 WARNING, 2 ERROR) is honoured, so Caffe's log tools and habits carry over.

A progress bar sharing the terminal (``progress.py``) sets ``paused_by`` with
``pause_for``: each log line is then written inside that context manager, which
takes the bar off the screen and redraws it after the line.
"""
import contextlib
import datetime
import logging
import os
import sys

LOGGER = logging.getLogger("pycaffe_lowbit")
_LEVEL_CHAR = {logging.DEBUG: "I", logging.INFO: "I", logging.WARNING: "W",
               logging.ERROR: "E", logging.CRITICAL: "F"}


class GlogFormatter(logging.Formatter):
    def format(self, record):
        t = datetime.datetime.fromtimestamp(record.created)
        prefix = "%s%s %d %s:%d] " % (
            _LEVEL_CHAR.get(record.levelno, "I"), t.strftime("%m%d %H:%M:%S.%f"),
            record.process, os.path.basename(record.pathname), record.lineno)
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return prefix + message


class GlogHandler(logging.StreamHandler):
    """A stream handler of glog lines; ``paused_by`` (a context manager
    factory, or None) wraps each write."""

    paused_by = None
    _lowbit = True      # the mark tests/conftest.py looks for

    def emit(self, record):
        if self.paused_by is None:
            super().emit(record)
            return
        with self.paused_by():
            super().emit(record)


@contextlib.contextmanager
def pause_for(pause):
    """Within the block, every glog line is written inside ``pause()``."""
    handlers = [h for h in LOGGER.handlers if isinstance(h, GlogHandler)]
    for handler in handlers:
        handler.paused_by = pause
    try:
        yield
    finally:
        for handler in handlers:
            handler.paused_by = None


def setup_logging(level=None, stream=None):
    """Send library logs to ``stream`` (stderr) in glog format, once."""
    if level is None:
        glog = os.environ.get("GLOG_minloglevel")
        level = {"0": logging.INFO, "1": logging.WARNING, "2": logging.ERROR,
                 "3": logging.CRITICAL}.get(glog, logging.INFO)
    for handler in list(LOGGER.handlers):
        if isinstance(handler, GlogHandler):
            LOGGER.removeHandler(handler)
    handler = GlogHandler(stream or sys.stderr)
    handler.setFormatter(GlogFormatter())
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False
    return LOGGER
