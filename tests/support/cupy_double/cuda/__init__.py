"""``cupy.cuda`` of the double: the device, streams, events, pinned host memory
and the memory pool, with CuPy's call shapes. Work runs at once on the host,
so streams and events only keep order and time (``get_elapsed_time`` is the
host's wall time between two recorded events)."""
import time
import weakref

from . import runtime

_streams = []      # the ``with stream:`` stack
_recorded = []     # events recorded (for tests), in order


class Device:
    """``cupy.cuda.Device(device=None)``: ``id``, ``use()``, a context manager."""

    def __init__(self, device=None):
        self.id = runtime.getDevice() if device is None else runtime._check(device)
        self._previous = []

    def use(self):
        runtime.setDevice(self.id)

    def synchronize(self):
        return None

    @property
    def compute_capability(self):
        props = runtime.getDeviceProperties(self.id)
        return "%d%d" % (props["major"], props["minor"])

    @property
    def mem_info(self):
        return runtime.memGetInfo()

    def __enter__(self):
        self._previous.append(runtime.getDevice())
        self.use()
        return self

    def __exit__(self, *exc):
        runtime.setDevice(self._previous.pop())

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return "<CUDA Device %d>" % self.id


class Event:
    """``cupy.cuda.Event(block=False, disable_timing=False, interprocess=False)``."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self.disable_timing = disable_timing
        self.time = None
        self.ptr = id(self)

    def record(self, stream=None):
        self.time = time.perf_counter()
        _recorded.append(self)

    def synchronize(self):
        return None

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events (CUDA's error when one was not
    recorded or timing is disabled)."""
    if start_event.disable_timing or end_event.disable_timing:
        raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: timing is disabled")
    if start_event.time is None or end_event.time is None:
        raise runtime.CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end_event.time - start_event.time) * 1000.0


class Stream:
    """``cupy.cuda.Stream(null=False, non_blocking=False, ptds=False, priority=None)``."""

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else id(self)

    def synchronize(self):
        return None

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event

    def wait_event(self, event):
        return None

    def use(self):
        _streams[:] = [self]
        return self

    @property
    def done(self):
        return True

    def __enter__(self):
        _streams.append(self)
        return self

    def __exit__(self, *exc):
        _streams.pop()


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return _streams[-1] if _streams else Stream.null


class PinnedMemoryPointer(bytearray):
    """Page-locked host memory (``alloc_pinned_memory``): a buffer NumPy can view
    (``numpy.frombuffer(mem, dtype, count)``), with ``ptr`` and ``size``."""

    @property
    def ptr(self):
        import ctypes
        return ctypes.addressof((ctypes.c_char * max(len(self), 1)).from_buffer(self)) \
            if len(self) else 0

    @property
    def size(self):
        return len(self)


def alloc_pinned_memory(size):
    return PinnedMemoryPointer(int(size))


class MemoryPool:
    """``cupy.cuda.MemoryPool``: the bytes of live device arrays, a limit."""

    def __init__(self):
        self._used = 0
        self._limit = 0

    def _track(self, array):
        self._used += array.nbytes
        if self._limit and self._used > self._limit:
            self._used -= array.nbytes
            raise MemoryError("Out of memory allocating %d bytes (limit %d)"
                              % (array.nbytes, self._limit))
        weakref.finalize(array, self._release, array.nbytes)

    def _release(self, nbytes):
        self._used -= nbytes

    def used_bytes(self):
        return self._used

    def total_bytes(self):
        return self._used

    def free_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0

    def free_all_blocks(self, stream=None):
        return None

    def set_limit(self, size=None, fraction=None):
        self._limit = int(size or (fraction or 0) * runtime.TOTAL_MEMORY)

    def get_limit(self):
        return self._limit


class PinnedMemoryPool:
    def n_free_blocks(self):
        return 0

    def free_all_blocks(self):
        return None


_pool, _pinned_pool = MemoryPool(), PinnedMemoryPool()


def _default_pool():
    """``cupy.get_default_memory_pool()`` (CuPy has it at the top level)."""
    return _pool


def _default_pinned_pool():
    return _pinned_pool


def is_available():
    return True
