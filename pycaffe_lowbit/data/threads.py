"""The data path's background threads, and their stop before the interpreter exits.

Why: a daemon thread still running when the interpreter finalizes is ended by
CPython from inside ``PyEval_RestoreThread`` the next time it asks for the GIL.
A thread that is inside ``cv2.imdecode`` (which releases the GIL and takes it
back in a C++ destructor) is then unwound through a ``noexcept`` frame, and the
C++ runtime calls ``std::terminate``: "terminate called without an active
exception", SIGABRT, exit status 134, after a run that had succeeded.

So every thread of the data path is started here with a stop event, and an
``atexit`` hook (which runs before finalization, while the threads may still
take the GIL) sets every stop event and joins every thread. A thread checks
its event between units of work (a batch, a record), so it ends within one
unit; the join waits up to ``JOIN_TIMEOUT`` seconds for each.
"""
import atexit
import threading
import weakref

JOIN_TIMEOUT = 60.0

class _Order:
    """Never collected: anchors the finalizer that orders the exit hooks."""


_lock = threading.Lock()
_running = {}           # thread -> its stop event


def start(target, args=(), name="data"):
    """Start ``target(stop, *args)`` in a daemon thread; ``stop`` is the
    threading.Event it must poll. Returns (thread, stop)."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,) + tuple(args), name=name,
                              daemon=True)
    with _lock:
        for old in [t for t in _running if not t.is_alive() and t.ident is not None]:
            del _running[old]       # ended (a thread is joined only once it is dead)
        _running[thread] = stop
    thread.start()
    return thread, stop


def running():
    """The data threads still running (tests check that none is left)."""
    with _lock:
        return [t for t in _running if t.is_alive()]


def stop_all(timeout=JOIN_TIMEOUT):
    """Tell every data thread to stop, then wait for each (up to ``timeout``
    seconds each)."""
    with _lock:
        items = list(_running.items())
    for _, stop in items:
        stop.set()
    for thread, _ in items:
        if thread is not threading.current_thread():
            thread.join(timeout)


# atexit runs its hooks last-registered first. weakref.finalize registers its
# own hook when the first finalizer is made; one made here first makes sure
# that hook precedes ours in the list, so ours runs before any finalizer that
# runs at exit (a finalizer closing what a data thread still reads).
weakref.finalize(_Order, lambda: None)
atexit.register(stop_all)
