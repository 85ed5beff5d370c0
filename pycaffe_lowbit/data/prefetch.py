"""Prefetching: a background thread loads batches ahead of the net.

``Prefetcher(load_batch, depth)`` calls ``load_batch()`` (read, decode,
transform: NumPy work that mostly releases the GIL) in one daemon thread and
keeps up to ``depth`` batches in a queue (Caffe's DataParameter.prefetch);
``next()`` hands them out in order. One thread calls ``load_batch`` in sequence,
so the batches and their random draws are those of a synchronous run whatever
the depth; ``depth`` 0 loads synchronously in ``next()``.

An exception in the thread is raised again by ``next()`` (the same exception,
with its message), at the batch where it happened, and by every later call.
The thread holds ``load_batch`` (its reader), never the layer that owns the
prefetcher: when the prefetcher is collected or closed the thread is told to
stop and ends after its current batch (or within ``_POLL`` seconds when it
waits on a full queue); before the interpreter exits every such thread is
stopped and joined (``threads.py`` says why: else a thread inside OpenCV
aborts the process).
"""
import queue
import weakref

from . import threads

_POLL = 0.2


class _Failure:
    def __init__(self, exc):
        self.exc = exc


class Prefetcher:
    def __init__(self, load_batch, depth=4, name="prefetch"):
        self._load = load_batch
        self._failure = None
        self._thread = None
        self._peeked = None
        if depth <= 0:
            return
        self._queue = queue.Queue(depth)
        self._thread, stop = threads.start(_run, (load_batch, self._queue), name=name)
        self._load = None
        self._close = weakref.finalize(self, stop.set)

    def next(self):
        """The next batch (whatever ``load_batch`` returned)."""
        if self._failure is not None:
            raise self._failure.exc
        if self._thread is None:
            return self._load()
        if self._peeked is not None:
            item, self._peeked = self._peeked, None
            if isinstance(item, _Failure):
                self._failure = item
                raise item.exc
            return item
        while True:
            try:
                item = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the prefetch thread has stopped") from None
        if isinstance(item, _Failure):
            self._failure = item
            raise item.exc
        return item

    def peek(self):
        """The next batch if the thread has it ready, else None, without
        taking it (``next`` returns it); None after a failure too."""
        if self._thread is None or self._failure is not None:
            return None
        if self._peeked is None:
            try:
                self._peeked = self._queue.get_nowait()
            except queue.Empty:
                return None
        return None if isinstance(self._peeked, _Failure) else self._peeked

    def close(self, wait=False):
        """Stop the thread (it ends at its next poll); ``wait``: join it."""
        if self._thread is not None:
            self._close()
            if wait:
                self._thread.join(threads.JOIN_TIMEOUT)


def _run(stop, load_batch, out):
    while not stop.is_set():
        try:
            item = load_batch()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            item = _Failure(exc)
        while not stop.is_set():
            try:
                out.put(item, timeout=_POLL)
                break
            except queue.Full:
                continue
        if isinstance(item, _Failure):
            return
