"""The CuPy double against CuPy's own surface (names, signatures, dunder
methods: what CuPy shows without a device), and its device objects: the
device and its runtime, streams, events, pinned memory, the memory pool,
``random``, cuBLAS and the raw kernels."""
import ast
import importlib.util
import inspect
import os

import numpy as np
import pytest

import support.cupy_double as cp
from support.cupy_double import _array, _functions, _raw, cublas
from pycaffe_lowbit.kernels import emulation, loader

F32 = np.float32


@pytest.fixture(scope="module")
def cupy_module():
    try:
        import cupy
    except ImportError as exc:
        if os.environ.get("LOWBIT_REQUIRE_CUPY"):
            raise
        pytest.skip("CuPy not installed: %s" % exc)
    return cupy


# -- the double is CuPy's shape -----------------------------------------------------------
def test_every_function_of_the_double_is_cupys(cupy_module):
    missing = [n for n in _functions.NAMES if not callable(getattr(cupy_module, n, None))]
    missing += ["linalg." + n for n in _functions.LINALG_NAMES
                if not callable(getattr(cupy_module.linalg, n, None))]
    assert not missing


def test_every_call_the_package_makes_on_an_array_module_is_in_the_double():
    from kernels.test_cupy_api import array_module_calls
    missing = set()
    for where, name, _ in array_module_calls():
        obj = cp
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is None:
            missing.add("%s (%s)" % (name, where))
    assert not missing


def test_array_methods_and_protocols_are_cupys(cupy_module):
    ours = set(_array.METHODS) | {"get", "set", "item", "tolist", "tobytes", "fill", "dot"}
    assert ours <= set(dir(cupy_module.ndarray))
    for name in ("__array__", "__array_function__", "__array_ufunc__", "__float__",
                 "__int__", "__bool__", "__format__", "__cuda_array_interface__"):
        assert hasattr(cupy_module.ndarray, name) and hasattr(cp.ndarray, name), name
    assert not hasattr(cupy_module.ndarray, "__index__") and not hasattr(cp.ndarray, "__index__")
    assert cupy_module.ndarray.__hash__ is None and cp.ndarray.__hash__ is None
    assert cupy_module.ndarray.__array_priority__ == cp.ndarray.__array_priority__


def test_types_and_constants_are_numpys_as_in_cupy(cupy_module):
    for name in ("float32", "float64", "int32", "int64", "uint8", "bool_", "newaxis", "inf"):
        assert getattr(cp, name) is getattr(cupy_module, name) or \
            getattr(cp, name) == getattr(cupy_module, name)


@pytest.mark.parametrize("name", ["seed", "random_sample", "rand", "randn", "uniform",
                                  "normal", "standard_normal", "randint", "permutation",
                                  "default_rng", "get_random_state", "reset_states"])
def test_random_functions_take_cupys_arguments(cupy_module, name):
    theirs = inspect.signature(getattr(cupy_module.random, name)).parameters
    ours = inspect.signature(getattr(cp.random, name)).parameters
    assert list(ours) == list(theirs)


def _cupy_python_signature(cupy_module, module, function):
    spec = importlib.util.find_spec("cupy")
    path = os.path.join(spec.submodule_search_locations[0], module)
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return [a.arg for a in node.args.args]
    raise AssertionError("%s has no %s" % (path, function))


@pytest.mark.parametrize("name", ["gemm", "gemv"])
def test_cublas_calls_have_cupys_signatures(cupy_module, name):
    theirs = _cupy_python_signature(cupy_module, "cublas.py", name)
    assert list(inspect.signature(getattr(cublas, name)).parameters) == theirs


def test_cuda_objects_exist_in_cupy(cupy_module):
    for name in ("get_default_memory_pool", "get_default_pinned_memory_pool"):
        assert hasattr(cupy_module, name) and hasattr(cp, name), name
    for name in ("Device", "Stream", "Event", "get_current_stream", "get_elapsed_time",
                 "alloc_pinned_memory",
                 "MemoryPool", "is_available"):
        assert hasattr(cupy_module.cuda, name) and hasattr(cp.cuda, name), name
    for name in ("getDevice", "setDevice", "getDeviceCount", "getDeviceProperties",
                 "memGetInfo", "runtimeGetVersion", "driverGetVersion"):
        assert hasattr(cupy_module.cuda.runtime, name) and hasattr(cp.cuda.runtime, name)
    theirs = cupy_module.RawModule.__doc__.split("\n")[0]
    ours = list(inspect.signature(cp.RawModule).parameters)
    assert all(p in theirs for p in ours)


# -- devices, streams, events, memory --------------------------------------------------------
def test_one_device_that_can_be_used_and_its_properties():
    assert cp.cuda.runtime.getDeviceCount() == 1
    with cp.cuda.Device(0) as d:
        assert d.id == 0 and cp.cuda.runtime.getDevice() == 0
    props = cp.cuda.runtime.getDeviceProperties(0)
    assert isinstance(props["name"], bytes) and props["totalGlobalMem"] > 0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="invalid device ordinal"):
        cp.cuda.Device(1).use()


def test_streams_and_events_time_the_work_between_them():
    start, end = cp.cuda.Event(), cp.cuda.Event()
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        assert cp.cuda.get_current_stream() is stream
        start.record()
        cp.ones(1000).sum()
        end.record()
    end.synchronize()
    assert cp.cuda.get_current_stream() is cp.cuda.Stream.null
    assert cp.cuda.get_elapsed_time(start, end) >= 0
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        cp.cuda.get_elapsed_time(cp.cuda.Event(), end)


def test_pinned_memory_is_a_host_buffer_numpy_views():
    mem = cp.cuda.alloc_pinned_memory(16)
    view = np.frombuffer(mem, F32, 4)
    view[:] = [1, 2, 3, 4]
    assert mem.size == 16 and mem.ptr != 0
    assert cp.asarray(view).tolist() == [1, 2, 3, 4]


def test_the_memory_pool_counts_live_arrays_and_keeps_a_limit():
    pool = cp.get_default_memory_pool()
    before = pool.used_bytes()
    a = cp.zeros(1 << 20, np.uint8)
    assert pool.used_bytes() - before == 1 << 20
    del a
    assert pool.used_bytes() == before
    pool.set_limit(size=before + 1000)
    try:
        with pytest.raises(MemoryError, match="Out of memory"):
            cp.empty(2000, np.uint8)
    finally:
        pool.set_limit(size=0)


# -- random ---------------------------------------------------------------------------------------
def test_random_follows_cupys_generator_api():
    cp.random.seed(3)
    a = cp.random.random_sample((2, 3), F32)
    cp.random.seed(3)
    assert type(a) is cp.ndarray and a.dtype == F32 and a.shape == (2, 3)
    assert cp.random.random_sample((2, 3), F32).tolist() == a.tolist()
    assert cp.random.rand(4).dtype == np.float64
    with pytest.raises(TypeError, match="float32 and float64"):
        cp.random.random_sample(3, np.int32)
    g = cp.random.default_rng(0)
    assert g.random(3, F32).dtype == F32 and g.integers(0, 5, 4).dtype == np.int64


# -- cuBLAS ---------------------------------------------------------------------------------------
def test_cublas_gemm_and_gemv_compute_with_beta_in_place():
    a = cp.asarray(np.arange(6, dtype=F32).reshape(2, 3))
    b = cp.asarray(np.ones((2, 4), F32))
    out = cp.ones((3, 4), F32)
    cublas.gemm("T", "N", a, b, out=out, alpha=1.0, beta=1.0)
    np.testing.assert_array_equal(out.get(), a.get().T @ b.get() + 1)
    y = cp.ones(2, F32)
    cublas.gemv("N", 2.0, a, cp.ones(3, F32), 0.0, y)
    assert y.tolist() == [6, 24]
    with pytest.raises(AssertionError):
        cublas.gemm("N", "N", a, b, out=out)
    with pytest.raises(TypeError, match="Unsupported type"):
        cublas.gemv("N", 1.0, a, np.ones(3, F32), 0.0, y)
    with pytest.raises(ValueError, match="stride of one element"):
        cublas.gemv("N", 1.0, a, cp.ones(6, F32)[::2], 0.0, y)


# -- raw kernels ----------------------------------------------------------------------------------
def _relu_module():
    names = [e for k in loader.signatures("neuron").values() for e in k.expressions()]
    return cp.RawModule(code=loader.source.read("neuron"),
                        options=loader.NVRTC_OPTIONS, name_expressions=names)


def test_raw_module_launches_the_host_compiled_kernel():
    relu = _relu_module().get_function("lowbit_relu_fwd<float>")
    x = cp.asarray(np.array([-2, 3], F32))
    y = cp.empty(2, F32)
    before = emulation.launched["neuron", "lowbit_relu_fwd"]
    relu((1,), (512,), (np.int64(2), x, y, F32(0.5)))
    assert y.tolist() == [-1, 3]
    assert emulation.launched["neuron", "lowbit_relu_fwd"] == before + 1


def test_raw_kernel_launches_follow_cudas_rules():
    module = _relu_module()
    with pytest.raises(_raw.CUDADriverError, match="named symbol not found"):
        module.get_function("lowbit_relu_fwd<half>")
    relu = module.get_function("lowbit_relu_fwd<float>")
    x, y = cp.zeros(2, F32), cp.zeros(2, F32)
    with pytest.raises(_raw.CUDADriverError, match="threads per block"):
        relu((1,), (2048,), (np.int64(2), x, y, F32(0)))
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        relu((1,), (32,), (np.int64(2), np.zeros(2, F32), y, F32(0)))
    with pytest.raises(ValueError, match="not C-contiguous"):
        relu((1,), (32,), (np.int64(2), cp.zeros(4, F32)[::2], y, F32(0)))
    with pytest.raises(NotImplementedError, match="only the package's .cu families"):
        cp.RawModule(code="__global__ void k() {}")


def test_the_double_is_no_larger_than_cupy(cupy_module):
    """A name the double has and CuPy lacks would let a call pass here and fail
    on a device."""
    # the double's marker; cupyx (a module of its own); cupy.cublas (imported on use)
    own = {"DOUBLE", "cupyx", "cublas"}
    extra = [n for n in dir(cp) if not n.startswith("_") and n not in own
             and not hasattr(cupy_module, n)]
    extra += ["cuda." + n for n in dir(cp.cuda) if not n.startswith("_")
              and not hasattr(cupy_module.cuda, n)
              and n not in ("time", "weakref", "nccl")]     # cupy.cuda.nccl: imported on use
    extra += ["random." + n for n in dir(cp.random) if not n.startswith("_")
              and not hasattr(cupy_module.random, n) and n not in ("np", "wrap")]
    assert not extra
