"""The kernels run on the CPU (pycaffe_lowbit.kernels.emulation): every family
compiles for the host, with exactly the kernels DEVICE_ONLY does not list;
launches check their arguments, follow Caffe's grid rule and cover any size."""
import numpy as np
import pytest

from pycaffe_lowbit import kernels
from pycaffe_lowbit.kernels import emulation, loader, source


@pytest.mark.parametrize("family", source.families())
def test_family_builds_for_the_host_without_only_the_device_only_kernels(family):
    host = set(emulation.module(family).kernels)
    every = set(loader.signatures(family))
    assert every - host == set(kernels.DEVICE_ONLY.get(family, ()))


def test_device_only_lists_real_kernels():
    for family, names in kernels.DEVICE_ONLY.items():
        assert set(names) <= set(loader.signatures(family)), family


def test_grid_rule_is_caffes():
    assert kernels.THREADS == 512
    assert [kernels.grid(n) for n in (0, 1, 512, 513, 5000)] == [1, 1, 1, 2, 10]


@pytest.mark.parametrize("n", [0, 1, 7, 511, 512, 513, 3001])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_item_of_any_size_is_computed(n, dtype):
    x = np.linspace(-2, 2, n).astype(dtype)
    y = np.full_like(x, np.nan)
    with kernels.emulate():
        kernels.launch("neuron", "lowbit_relu_fwd", n, n, x, y, 0.25)
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * dtype(0.25)))


def test_a_grid_smaller_than_the_work_strides_over_it():
    x = np.arange(-1000, 1000, dtype=np.float32)
    y = np.empty_like(x)
    with kernels.emulate():
        kernels.launch("neuron", "lowbit_relu_fwd", x.size, x.size, x, y, 0.5, threads=32,
                       blocks=3)
    np.testing.assert_array_equal(y, np.where(x > 0, x, x * 0.5))


@pytest.mark.parametrize("args, message", [
    ((4, np.zeros(4, np.float32), np.zeros(4, np.float64), 0.0),
     r"parameter y needs float32, got an array of float64"),
    ((4, np.zeros(8, np.float32)[::2], np.zeros(4, np.float32), 0.0),
     r"parameter x needs a C-contiguous array"),
    ((4, np.zeros(4, np.float32), 1.0, 0.0), r"parameter y needs an array of float32"),
    ((4, np.zeros(4, np.float32), np.zeros(4, np.float32), np.zeros(2)),
     r"parameter slope is a float32 value, got an array"),
    ((4, np.zeros(4, np.float32)), r"takes 4 arguments \(n, x, y, slope\), got 2"),
])
def test_launch_arguments_are_checked_against_the_signature(args, message):
    with kernels.emulate(), pytest.raises(source.KernelArgumentError, match=message):
        kernels.launch("neuron", "lowbit_relu_fwd", 4, *args)


def test_an_unknown_kernel_is_named():
    with kernels.emulate(), pytest.raises(source.KernelArgumentError,
                                          match="neuron.cu has no kernel lowbit_nope"):
        kernels.launch("neuron", "lowbit_nope", 1)


def test_active_only_on_the_gpu_or_under_emulation():
    x = np.zeros(3)
    assert not kernels.active(x)
    with kernels.emulate():
        assert kernels.active(x)
    assert not kernels.active(x)


def test_host_compile_errors_name_the_family(tmp_path, monkeypatch):
    prelude = (source.FOLDER + "/" + source.PRELUDE)
    (tmp_path / source.PRELUDE).write_text(open(prelude).read())
    (tmp_path / "bad.cu").write_text("template <typename T>\n__global__ void lowbit_bad("
                                     "const index_t n, T* y) { y[0] = slop; }\n")
    monkeypatch.setattr(source, "FOLDER", str(tmp_path))
    monkeypatch.setenv("LOWBIT_KERNEL_CACHE", str(tmp_path / "cache"))
    with pytest.raises(emulation.HostCompileError, match=r"bad.cu does not compile for the "
                                                         r"host:(.|\n)*slop"):
        emulation.build("bad")
