"""oneDNN (Intel's deep-learning primitives library) through its C API, by ctypes.

The library comes from the ``onednn-cpu-gomp`` wheel (``libdnnl.so.3`` in the
environment's ``lib/``; GNU OpenMP threads). The wheel ships no headers, so the
few constants used here are written out below and checked against the
library's own ``dnnl_*2str`` names in tests/cpu/test_onednn.py.

    available()        the library loaded, and LOWBIT_ONEDNN is not "0"
    threads()          OpenMP's thread count (OMP_NUM_THREADS): fixed into a
                       primitive when it is created, so part of every cache key
    plain_md(shape)    a C-contiguous float32 memory descriptor
    Primitive(pd)      a primitive in the user-scratchpad mode; ``run(args)``
                       executes it on NumPy arrays
    reorder(src_md, dst_md)   the Primitive copying between two layouts

Every primitive is created with ``dnnl_scratchpad_mode_user`` and gets its
scratchpad from the caller's thread (one buffer per Python thread, grown as
needed): with the library's own scratchpad, a primitive executed from another
Python thread than the one that created it crashes the process. ctypes releases
the GIL during each call, so other Python threads run meanwhile.

Where the library is missing (another OS or CPU, or the wheel not installed)
``available()`` is False and one info line says why; the layers then take
their NumPy path.
"""
import collections
import ctypes
import logging
import os
import threading

import numpy as np

from . import onednn_lib
from .onednn_lib import DIMS, ExecArg, Library, OneDNNError

log = logging.getLogger("pycaffe_lowbit")

# -- constants (dnnl_types.h; checked by name in tests/cpu/test_onednn.py) --------
F32 = 3                                   # dnnl_f32
F32_UNDEF = 0                             # dnnl_data_type_undef (a sum post-op: the dst type)
FORMAT_ANY = 1                            # dnnl_format_tag_any
CPU = 1                                   # dnnl_cpu engine kind
STREAM_IN_ORDER = 1                       # dnnl_stream_in_order (default flags)
SCRATCHPAD_USER = 1                       # dnnl_scratchpad_mode_user
FORWARD_TRAINING, FORWARD_INFERENCE = 64, 96
BACKWARD, BACKWARD_DATA, BACKWARD_WEIGHTS = 128, 160, 192
CONVOLUTION_DIRECT = 0x1
DECONVOLUTION_DIRECT = 0xa
POOLING_MAX, POOLING_AVG_INCLUDE_PADDING, POOLING_AVG_EXCLUDE_PADDING = 0x1ff, 0x2ff, 0x3ff
LRN_ACROSS_CHANNELS = 0xaff
ELTWISE_RELU = 0x20
QUERY_IMPL_INFO_STR, QUERY_SCRATCHPAD_MD, QUERY_EXEC_ARG_MD = 8, 136, 255
# execution arguments (DNNL_ARG_*)
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_BIAS = 1, 17, 33, 41
ARG_WORKSPACE, ARG_SCRATCHPAD = 64, 80
ARG_DIFF_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS, ARG_DIFF_BIAS = 129, 145, 161, 169

class _OnFirstUse:
    """The Library, loaded at the first question (not at import: 20-30 ms)."""

    def __init__(self):
        self._loaded = None

    def _get(self):
        if self._loaded is None:
            with _LOCK:
                if self._loaded is None:
                    self._loaded = Library()
        return self._loaded

    @property
    def lib(self):
        return self._get().lib

    @property
    def error(self):
        return self._get().error


_LOCK = threading.RLock()
_LIB = _OnFirstUse()
_STATE = {"engine": None, "said": False}
_LOCAL = threading.local()


def available():
    """The library is allowed (LOWBIT_ONEDNN is not "0", read at every call) and
    loaded (at the first call so allowed); the first False answer logs one info line."""
    if os.environ.get("LOWBIT_ONEDNN", "1") == "0":
        return _off("turned off by LOWBIT_ONEDNN=0")
    if _LIB.lib is None:
        return _off(_LIB.error)
    return True


def _off(why):
    if not _STATE["said"]:
        _STATE["said"] = True
        log.info("oneDNN CPU engine off: %s; using the NumPy/OpenBLAS path", why)
    return False


def lib():
    """The ctypes library (only after ``available()``)."""
    return _LIB.lib


def check(status, what):
    if status != 0:
        name = _LIB.lib.dnnl_status2str(status).decode()
        raise OneDNNError("oneDNN %s failed: %s" % (what, name))


def threads():
    """OpenMP's current thread count for this thread (the ``OMP_NUM_THREADS`` setting)."""
    gomp = _STATE.get("gomp")
    if gomp is None:
        try:
            with onednn_lib.loading_openmp():   # if libgomp loads here, first
                gomp = ctypes.CDLL("libgomp.so.1")
            gomp.omp_get_max_threads.restype = ctypes.c_int
        except OSError:   # pragma: no cover - libdnnl loaded, so libgomp is there
            gomp = False
        _STATE["gomp"] = gomp
    return gomp.omp_get_max_threads() if gomp else 1


def engine():
    """The process's CPU engine (created once)."""
    with _LOCK:
        if _STATE["engine"] is None:
            e = ctypes.c_void_p()
            check(_LIB.lib.dnnl_engine_create(ctypes.byref(e), CPU, 0), "engine_create")
            _STATE["engine"] = e
    return _STATE["engine"]


def stream():
    """This Python thread's stream on the engine."""
    s = getattr(_LOCAL, "stream", None)
    if s is None:
        s = ctypes.c_void_p()
        check(_LIB.lib.dnnl_stream_create(ctypes.byref(s), engine(), STREAM_IN_ORDER),
              "stream_create")
        _LOCAL.stream = s
    return s


def dims(values):
    """A dnnl_dims_t (int64[12]) holding ``values``."""
    d = DIMS()
    for k, v in enumerate(values):
        d[k] = int(v)
    return d


class MemoryDesc:
    """An owned memory descriptor (destroyed with the object); ``.ptr`` for the C calls."""

    def __init__(self, ptr):
        self.ptr = ptr

    @classmethod
    def clone(cls, const_ptr):
        out = ctypes.c_void_p()
        check(_LIB.lib.dnnl_memory_desc_clone(ctypes.byref(out), const_ptr), "md_clone")
        return cls(out)

    @property
    def nbytes(self):
        return int(_LIB.lib.dnnl_memory_desc_get_size(self.ptr))

    def __eq__(self, other):
        return bool(_LIB.lib.dnnl_memory_desc_equal(self.ptr, other.ptr))

    __hash__ = object.__hash__

    def __del__(self):
        if self.ptr and _LIB.lib is not None:
            _LIB.lib.dnnl_memory_desc_destroy(self.ptr)
            self.ptr = None


def plain_md(shape):
    """float32, C-contiguous (row-major) ``shape``."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.insert(0, step)
        step *= int(n)
    md = ctypes.c_void_p()
    check(_LIB.lib.dnnl_memory_desc_create_with_strides(
        ctypes.byref(md), len(shape), dims(shape), F32, dims(strides)), "md_create")
    return MemoryDesc(md)


def any_md(shape):
    """float32 ``shape`` in the layout the primitive chooses (format_tag any)."""
    md = ctypes.c_void_p()
    check(_LIB.lib.dnnl_memory_desc_create_with_tag(
        ctypes.byref(md), len(shape), dims(shape), F32, FORMAT_ANY), "md_create")
    return MemoryDesc(md)


def tag_md(shape, name):
    """float32 ``shape`` in the format tag called ``name`` (``aBcd16b`` is nChw16c);
    the tag's number is looked up by name (``dnnl_fmt_tag2str``): their
    numbering changes between oneDNN versions."""
    tags = _STATE.setdefault("tags", {})
    if name not in tags:
        for value in range(2, 2048):
            if _LIB.lib.dnnl_fmt_tag2str(value).decode() == name:
                tags[name] = value
                break
        else:
            raise OneDNNError("oneDNN has no format tag %r" % name)
    md = ctypes.c_void_p()
    check(_LIB.lib.dnnl_memory_desc_create_with_tag(
        ctypes.byref(md), len(shape), dims(shape), F32, tags[name]), "md_create")
    return MemoryDesc(md)


def user_scratchpad_attr():
    """A primitive attribute in the user-scratchpad mode (the caller destroys it)."""
    attr = ctypes.c_void_p()
    check(_LIB.lib.dnnl_primitive_attr_create(ctypes.byref(attr)), "attr_create")
    check(_LIB.lib.dnnl_primitive_attr_set_scratchpad_mode(attr, SCRATCHPAD_USER),
          "attr_set_scratchpad_mode")
    return attr


def create_pd(create, *args):
    """A primitive descriptor from ``create(&pd, engine-less args..., attr)``, in
    the user-scratchpad mode; None where oneDNN has no implementation."""
    attr = user_scratchpad_attr()
    try:
        pd = ctypes.c_void_p()
        status = create(ctypes.byref(pd), *args, attr)
    finally:
        _LIB.lib.dnnl_primitive_attr_destroy(attr)
    if status != 0:
        return None
    return pd


def _scratch(nbytes):
    """This thread's scratchpad buffer, at least ``nbytes`` long."""
    buf = getattr(_LOCAL, "scratch", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _LOCAL.scratch = np.empty(max(nbytes, 1), np.uint8)
    return buf


class Primitive:
    """A created primitive (owning its descriptor) with its argument layouts.

    ``md(arg)`` is the memory descriptor the primitive wants for argument
    ``arg`` (DNNL_ARG_*); ``run({arg: array})`` executes it on C-contiguous
    arrays whose bytes are in those layouts, with a scratchpad from this thread."""

    def __init__(self, pd):
        self.pd = pd
        self.handle = ctypes.c_void_p()
        check(_LIB.lib.dnnl_primitive_create(ctypes.byref(self.handle), pd), "primitive_create")
        self._mds = {}
        self.scratchpad_md = self._query(QUERY_SCRATCHPAD_MD, 0)
        self.scratch_bytes = self.scratchpad_md.nbytes if self.scratchpad_md else 0

    def _query(self, what, index):
        ptr = _LIB.lib.dnnl_primitive_desc_query_md(self.pd, what, index)
        return MemoryDesc.clone(ptr) if ptr else None

    def md(self, arg):
        if arg not in self._mds:
            self._mds[arg] = self._query(QUERY_EXEC_ARG_MD, arg)
        return self._mds[arg]

    @property
    def impl(self):
        """The implementation's name, as oneDNN's verbose mode prints it (``jit:avx512_core``)."""
        out = ctypes.c_char_p()
        check(_LIB.lib.dnnl_primitive_desc_query(self.pd, QUERY_IMPL_INFO_STR, 0,
                                                 ctypes.byref(out)), "query impl")
        return out.value.decode()

    def run(self, arrays):
        lib = _LIB.lib
        args = dict(arrays)
        if self.scratch_bytes:
            args[ARG_SCRATCHPAD] = _scratch(self.scratch_bytes)
        mems = []
        try:
            for arg, array in args.items():
                md = self.scratchpad_md if arg == ARG_SCRATCHPAD else self.md(arg)
                m = ctypes.c_void_p()
                check(lib.dnnl_memory_create(ctypes.byref(m), md.ptr, engine(),
                                             ctypes.c_void_p(array.ctypes.data)), "memory_create")
                mems.append((arg, m))
            packed = (ExecArg * len(mems))(*[ExecArg(a, m) for a, m in mems])
            s = stream()
            check(lib.dnnl_primitive_execute(self.handle, s, len(mems), packed), "execute")
            check(lib.dnnl_stream_wait(s), "stream_wait")
        finally:
            for _, m in mems:
                lib.dnnl_memory_destroy(m)

    def __del__(self):
        if _LIB.lib is not None:
            if self.handle:
                _LIB.lib.dnnl_primitive_destroy(self.handle)
            if self.pd:
                _LIB.lib.dnnl_primitive_desc_destroy(self.pd)


def reorder(src_md, dst_md):
    """The Primitive copying ``src_md``'s layout into ``dst_md``'s (ARG_SRC -> ARG_DST)."""
    e = engine()
    pd = create_pd(_LIB.lib.dnnl_reorder_primitive_desc_create, src_md.ptr, e, dst_md.ptr, e)
    if pd is None:
        raise OneDNNError("oneDNN has no reorder between these layouts")
    return Primitive(pd)


def buffer(md, slot=None):
    """An uninitialised float32 array holding one tensor of layout ``md``.

    With ``slot`` (a name), this Python thread's array of that name is reused
    (grown as needed): for the temporaries of one call (the blocked copies
    between reorders and a primitive), which would otherwise be fresh pages to
    fault in at every call."""
    n = max(md.nbytes, 4) // 4
    if slot is None:
        return np.empty(n, np.float32)
    pool = getattr(_LOCAL, "pool", None)
    if pool is None:
        pool = _LOCAL.pool = {}
    buf = pool.get(slot)
    if buf is None or buf.size < n:
        buf = pool[slot] = np.empty(n, np.float32)
    return buf[:n]


def writable_out(array, shape, *inputs):
    """``array`` viewed as ``shape`` (itself where that is its shape) where a
    primitive's output may be written into it in place: a C-contiguous,
    writeable float32 NumPy array of that many values, overlapping none of the
    primitive's ``inputs`` (None entries skipped); else None.

    The layers pass their top's (or bottom diff's) current array: writing into
    it, as Caffe writes into a blob's memory, takes no fresh pages and frees
    none, where a new array would hold both for a moment (the peak) and leave
    the old one to the allocator."""
    shape = tuple(shape)
    if not (isinstance(array, np.ndarray) and array.dtype == np.float32
            and array.size == int(np.prod(shape, dtype=np.int64))
            and array.flags.c_contiguous and array.flags.writeable):
        return None
    if any(a is not None and np.may_share_memory(array, a) for a in inputs):
        return None
    return array if array.shape == shape else array.reshape(shape)


class PlanCache:
    """The plans of one layer kind, least recently used dropped past ``size``.

    ``get(key, make)``: the plan cached under ``key`` (its geometry and the
    thread count), else ``make()``'s, cached; a plan whose ``ok`` is false
    (no implementation) is kept as None, so it is not built again. Plans are
    made outside the lock (primitive creation takes milliseconds)."""

    def __init__(self, size=256):
        self.size = size
        self._plans = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
        plan = make()
        if plan is not None and not plan.ok:
            plan = None
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self.size:
                self._plans.popitem(last=False)
        return plan
