"""Decode and transform workers: ``WorkerPool(n).run(work, count)`` calls
``work(i)`` for i = 0..count-1 across n threads and returns when all are done.

The calling thread takes part (n = 1 starts no thread). The threads take the
items in increasing order from one shared counter, so a thread the OS has set
aside (a busy machine) holds up at most the item it took, and ``run`` returns
once every item is done, whether or not each worker has woken. Which thread
does which item varies; the results do not, because ``work(i)`` writes only
slot i of its batch and draws no random numbers (a batch's draws are made
before, in the calling thread, in record order). Threads suit this work:
cv2.imdecode, cv2.resize and NumPy's ufuncs and copies release the GIL for
their whole pass over an image.

Every item is done even after an exception; ``run`` raises the exception of
the lowest item, the same whatever n. The threads are data threads (``threads.py``):
stopped when the pool is collected and joined before the interpreter exits.

A layer's count (``resolve``): the command line's ``--data_workers``
(``set_override``) if given, else the layer's ``workers`` field if > 0, else
``default_workers()``: ``LOWBIT_DATA_WORKERS`` if set, else the CPUs this
process may run on, at most ``MAX_DEFAULT``.
"""
import itertools
import os
import queue
import threading
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
        stops = []
        for k in range(1, self.count):
            inbox = queue.Queue()
            _, stop = threads.start(_serve, (inbox,), name="%s-%d" % (name, k))
            self._inboxes.append(inbox)
            stops.append(stop)
        weakref.finalize(self, _stop_all, stops)

    def run(self, work, count):
        """work(0), ..., work(count - 1); raises the exception of the lowest item."""
        if self.count == 1 or count <= 1:
            for i in range(count):
                work(i)
            return
        job = _Job(work, count)
        for inbox in self._inboxes[:count - 1]:
            inbox.put(job)
        job.serve()
        job.finished.wait()     # items other threads took and are still doing
        if job.failures:
            raise min(job.failures, key=lambda f: f[0])[1]


class _Job:
    """One ``run``: the items go to whichever thread asks next."""

    def __init__(self, work, count):
        self.work = work
        self.count = count
        self.take = itertools.count().__next__     # atomic under the GIL
        self.lock = threading.Lock()
        self.left = count
        self.finished = threading.Event()
        self.failures = []

    def serve(self):
        while True:
            i = self.take()
            if i >= self.count:
                return
            try:
                self.work(i)
            except BaseException as exc:  # noqa: B036 -- run() raises the lowest item's
                self.failures.append((i, exc))
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.finished.set()
                    self.work = None


def _serve(stop, inbox):
    while not stop.is_set():
        try:
            job = inbox.get(timeout=_POLL)
        except queue.Empty:
            continue
        job.serve()
        del job


def _stop_all(stops):
    for stop in stops:
        stop.set()
