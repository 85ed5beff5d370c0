"""Loading ``libdnnl.so.3`` (the ``onednn-cpu-gomp`` wheel) and declaring the C
functions ``cpu.onednn`` calls: argument and result types, since the wheel ships
no headers. ``Library().lib`` is None where it does not load, and ``.error``
then says why (another OS, the wheel missing).
"""
import contextlib
import ctypes
import os
import sys

MAX_NDIMS = 12

DIMS = ctypes.c_int64 * MAX_NDIMS


class ExecArg(ctypes.Structure):
    """dnnl_exec_arg_t: an argument index and its memory object."""
    _fields_ = [("arg", ctypes.c_int), ("memory", ctypes.c_void_p)]


class OneDNNError(RuntimeError):
    """A oneDNN call returned a status other than dnnl_success."""


def _find_library():
    """libdnnl.so.3 of this environment (the wheel's lib/), else the loader's search path."""
    names = ("libdnnl.so.3", "libdnnl.so")
    dirs = [os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")]
    for d in dirs:
        for n in names:
            path = os.path.join(d, n)
            if os.path.exists(path):
                return path
    return names[0]


SPIN_COUNT = "3000"   # GNU OpenMP's spin before an idle worker sleeps (GOMP_SPINCOUNT)


def brief_openmp_spin():
    """GOMP_SPINCOUNT=3000 unless the environment sets it or OMP_WAIT_POLICY,
    before GNU OpenMP loads with libdnnl: an idle worker spins a few tens of
    microseconds (the gap between two primitives of one layer, or two small
    layers), then sleeps. GNU's default spins 100x longer: its idle workers then
    hold the cores that the Python thread and OpenBLAS need between layers, and
    on a machine with other work running a two-thread net slows several times
    (digits BWN solver step: 2.8 ms on one thread; on two, 1.9 ms at this
    setting, 1.7 at GNU's 30000, 3.6 never spinning (PASSIVE); with another
    process on one of the two cores: 12, 28 and 12 ms median). Without effect
    where an OpenMP runtime is already loaded (it has read its settings). True
    where it set the variable (the caller removes it once libgomp is loaded)."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return False
    try:
        with open("/proc/self/maps") as maps:
            if "libgomp" in maps.read():
                return False
    except OSError:   # pragma: no cover - Linux only
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


@contextlib.contextmanager
def loading_openmp():
    """Around a load that may bring GNU OpenMP in: ``brief_openmp_spin``'s
    setting while it loads (libgomp reads it then), removed afterwards, so child
    processes keep their own."""
    added = brief_openmp_spin()
    try:
        yield
    finally:
        if added:
            os.environ.pop("GOMP_SPINCOUNT", None)


class Library:
    """The loaded library with typed functions; ``error`` says why it is absent."""

    def __init__(self):
        self.lib = None
        self.error = None
        if not sys.platform.startswith("linux"):
            self.error = "the onednn-cpu-gomp wheel is Linux-only"
            return
        try:
            with loading_openmp():
                lib = ctypes.CDLL(_find_library())
            self._declare(lib)
        except (OSError, AttributeError) as exc:
            self.error = "libdnnl.so.3 not loaded (%s); pip install onednn-cpu-gomp" % exc
            return
        self.lib = lib

    @staticmethod
    def _declare(lib):
        vp, i = ctypes.c_void_p, ctypes.c_int
        pvp = ctypes.POINTER(vp)
        status = {
            "dnnl_engine_create": [pvp, i, ctypes.c_size_t],
            "dnnl_stream_create": [pvp, vp, ctypes.c_uint],
            "dnnl_stream_wait": [vp],
            "dnnl_memory_desc_create_with_strides": [pvp, i, DIMS, i, DIMS],
            "dnnl_memory_desc_create_with_tag": [pvp, i, DIMS, i, i],
            "dnnl_memory_desc_destroy": [vp],
            "dnnl_memory_desc_clone": [pvp, vp],
            "dnnl_memory_create": [pvp, vp, vp, vp],
            "dnnl_memory_destroy": [vp],
            "dnnl_primitive_attr_create": [pvp],
            "dnnl_primitive_attr_destroy": [vp],
            "dnnl_primitive_attr_set_scratchpad_mode": [vp, i],
            "dnnl_primitive_attr_get_scratchpad_mode": [vp, ctypes.POINTER(i)],
            "dnnl_primitive_desc_destroy": [vp],
            "dnnl_primitive_desc_clone": [pvp, vp],
            "dnnl_primitive_desc_query": [vp, i, i, vp],
            "dnnl_primitive_create": [pvp, vp],
            "dnnl_primitive_destroy": [vp],
            "dnnl_primitive_execute": [vp, vp, i, ctypes.POINTER(ExecArg)],
            "dnnl_reorder_primitive_desc_create": [pvp, vp, vp, vp, vp, vp],
            "dnnl_convolution_forward_primitive_desc_create":
                [pvp, vp, i, i, vp, vp, vp, vp, DIMS, DIMS, DIMS, DIMS, vp],
            "dnnl_convolution_backward_data_primitive_desc_create":
                [pvp, vp, i, vp, vp, vp, DIMS, DIMS, DIMS, DIMS, vp, vp],
            "dnnl_convolution_backward_weights_primitive_desc_create":
                [pvp, vp, i, vp, vp, vp, vp, DIMS, DIMS, DIMS, DIMS, vp, vp],
            "dnnl_lrn_forward_primitive_desc_create":
                [pvp, vp, i, i, vp, vp, ctypes.c_int64, ctypes.c_float, ctypes.c_float,
                 ctypes.c_float, vp],
            "dnnl_lrn_backward_primitive_desc_create":
                [pvp, vp, i, vp, vp, vp, ctypes.c_int64, ctypes.c_float, ctypes.c_float,
                 ctypes.c_float, vp, vp],
            "dnnl_pooling_forward_primitive_desc_create":
                [pvp, vp, i, i, vp, vp, DIMS, DIMS, DIMS, DIMS, DIMS, vp],
            "dnnl_pooling_backward_primitive_desc_create":
                [pvp, vp, i, vp, vp, DIMS, DIMS, DIMS, DIMS, DIMS, vp, vp],
            "dnnl_matmul_primitive_desc_create": [pvp, vp, vp, vp, vp, vp, vp],
            "dnnl_post_ops_create": [pvp],
            "dnnl_post_ops_destroy": [vp],
            "dnnl_post_ops_append_sum": [vp, ctypes.c_float, ctypes.c_int32, i],
            "dnnl_primitive_attr_set_post_ops": [vp, vp],
            "dnnl_eltwise_forward_primitive_desc_create":
                [pvp, vp, i, i, vp, vp, ctypes.c_float, ctypes.c_float, vp],
            "dnnl_eltwise_backward_primitive_desc_create":
                [pvp, vp, i, vp, vp, vp, ctypes.c_float, ctypes.c_float, vp, vp],
        }
        for name, args in status.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, i
        lib.dnnl_primitive_desc_query_md.argtypes = [vp, i, i]
        lib.dnnl_primitive_desc_query_md.restype = vp
        lib.dnnl_memory_desc_get_size.argtypes = [vp]
        lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        lib.dnnl_memory_desc_equal.argtypes = [vp, vp]
        lib.dnnl_memory_desc_equal.restype = i
        for name in ("dnnl_status2str", "dnnl_dt2str", "dnnl_fmt_tag2str", "dnnl_prop_kind2str",
                     "dnnl_alg_kind2str", "dnnl_scratchpad_mode2str", "dnnl_engine_kind2str",
                     "dnnl_cpu_isa2str"):
            getattr(lib, name).argtypes, getattr(lib, name).restype = [i], ctypes.c_char_p
        lib.dnnl_get_effective_cpu_isa.restype = i


