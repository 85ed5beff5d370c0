"""Decode and transform workers: ``WorkerPool(n).run(work, count)`` calls
``work(i)`` for i = 0..count-1 across n threads and returns when all are done.

The calling thread takes part (n = 1 starts no thread). Item i goes to worker
i mod n, each worker doing its items in increasing order, so which images a
thread handles is fixed; the results never depend on it, because ``work(i)``
writes only slot i of its batch and draws no random numbers (a batch's draws
are made before, in the calling thread, in record order). Threads suit this
work: cv2.imdecode, cv2.resize and NumPy's ufuncs and copies release the GIL
for their whole pass over an image.

An exception stops its worker's items; ``run`` raises the one of the lowest
item, the same whatever n. The threads are data threads (``threads.py``):
stopped when the pool is collected and joined before the interpreter exits.

A layer's count (``resolve``): the command line's ``--data_workers``
(``set_override``) if given, else the layer's ``workers`` field if > 0, else
``default_workers()``: ``LOWBIT_DATA_WORKERS`` if set, else the CPUs this
process may run on, at most ``MAX_DEFAULT``.
"""
import os
import queue
import weakref

from . import threads

ENV = "LOWBIT_DATA_WORKERS"
MAX_DEFAULT = 8
_POLL = 0.2
_override = [0]


def cpu_count():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers():
    """``LOWBIT_DATA_WORKERS`` (an integer >= 1), else min(CPUs, MAX_DEFAULT)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            count = int(value)
            if count < 1:
                raise ValueError
        except ValueError:
            raise ValueError("%s must be a positive integer, got %r" % (ENV, value)) from None
        return count
    return max(1, min(cpu_count(), MAX_DEFAULT))


def set_override(count):
    """Every data layer built from now on uses ``count`` workers (0: undo)."""
    if count < 0:
        raise ValueError("--data_workers must be >= 0, got %d" % count)
    _override[0] = int(count)


def resolve(count):
    """The worker count of a layer whose field says ``count``."""
    if _override[0] > 0:
        return _override[0]
    return int(count) if count and count > 0 else default_workers()


class WorkerPool:
    def __init__(self, count, name="data-worker"):
        self.count = max(1, int(count))
        self._inboxes = []
        self._threads = []
        stops = []
        for k in range(1, self.count):
            inbox = queue.Queue()
            thread, stop = threads.start(_serve, (inbox,), name="%s-%d" % (name, k))
            self._inboxes.append(inbox)
            self._threads.append(thread)
            stops.append(stop)
        weakref.finalize(self, _stop_all, stops)

    def run(self, work, count):
        """work(0), ..., work(count - 1); raises the exception of the lowest item."""
        n = min(self.count, count)
        if n <= 1:
            return _chunk(work, range(count))
        done = queue.Queue()
        for k in range(1, n):
            self._inboxes[k - 1].put((work, range(k, count, n), done))
        failures = [_chunk(work, range(0, count, n), catch=True)]
        for _ in range(1, n):
            failures.append(self._wait(done))
        failures = [f for f in failures if f is not None]
        if failures:
            raise min(failures, key=lambda f: f[0])[1]

    def _wait(self, done):
        while True:
            try:
                return done.get(timeout=_POLL)
            except queue.Empty:
                if not all(t.is_alive() for t in self._threads):
                    raise RuntimeError("a data worker thread has stopped") from None


def _chunk(work, items, catch=False):
    for i in items:
        try:
            work(i)
        except BaseException as exc:  # noqa: B036 -- handed to run(), which raises it
            if not catch:
                raise
            return i, exc
    return None


def _serve(stop, inbox):
    while not stop.is_set():
        try:
            work, items, done = inbox.get(timeout=_POLL)
        except queue.Empty:
            continue
        done.put(_chunk(work, items, catch=True))
        del work


def _stop_all(stops):
    for stop in stops:
        stop.set()
