"""The backend pointed at the CuPy double ($LOWBIT_CUPY_MODULE): CuPy, its
extras, cuBLAS and NCCL are the double's; arrays are told apart by type."""
import numpy as np
import pytest

from pycaffe_lowbit.core import backend

pytestmark = pytest.mark.double


def test_the_backend_imports_the_double_in_cupys_place(cupy_double):
    import support.cupy_double as double
    assert backend.cupy() is double and backend.array_module() is double
    assert backend.cupyx().scatter_add is double.cupyx.scatter_add
    assert backend.cublas() is double.cublas
    assert backend.nccl() is None                  # no NCCL without devices
    assert backend.gpu_available() and backend.device_count() == 1


def test_arrays_are_told_apart_by_type(cupy_double):
    a = cupy_double.zeros(2)
    assert backend.get_array_module(a) is cupy_double
    assert backend.get_array_module(np.zeros(2), None, 1.0) is np
    assert backend.get_array_module(np.zeros(2), a) is cupy_double
    assert type(backend.to_numpy(a)) is np.ndarray
    assert backend.to_device(np.ones(2), cupy_double).tolist() == [1, 1]


def test_a_module_that_does_not_import_is_named(monkeypatch):
    monkeypatch.setenv(backend.CUPY_MODULE_VARIABLE, "no_such_cupy_double")
    reason = backend.gpu_unavailable_reason()
    assert "LOWBIT_CUPY_MODULE" in reason and "no_such_cupy_double" in reason
    with pytest.raises(backend.BackendError, match="no_such_cupy_double"):
        backend.set_mode_gpu()


def test_a_blob_larger_than_the_devices_memory_is_refused_naming_the_gpu(cupy_double):
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.core.errors import LayerMemoryError
    from pycaffe_lowbit.formats.text import parse_net_text
    net = ('layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }'
           'layer { name: "tile" type: "Tile" bottom: "x" top: "t" '
           'tile_param { axis: 1 tiles: 2000000000 } }')
    with pytest.raises(LayerMemoryError, match=r"layer 'tile' \(type Tile\): top 't': shape 2 "
                                               r"6000000000 .* GPU 0 has 17.2 GB of memory"):
        caffe.Net(parse_net_text(net), caffe.TEST)
