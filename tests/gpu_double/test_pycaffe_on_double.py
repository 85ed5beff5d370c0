"""pycaffe in GPU mode on the CuPy double: blobs live on the device (the
engine's arrays follow CuPy's rules) while pycaffe's views are NumPy, as in
Caffe (their state machine: test_host_views.py); Python layers, NetSpec nets, weights saved from
device arrays, snapshots and resumes, the fused solver update and the image
data layers all take their device branches (``cupy_double`` fixture)."""
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.kernels import emulation
from pycaffe_lowbit.pycaffe.net_spec import L, NetSpec
from support import paths
from support.helpers import MLP_NET

pytestmark = pytest.mark.double
IO = os.path.join(paths.GOLDEN, "io")


def mlp(tmp_path=None, weights=None):
    return caffe.Net(parse_net_text(MLP_NET), caffe.TRAIN, weights=weights)


def feed(rng):
    return rng.randn(4, 6).astype(np.float32), np.array([0, 1, 2, 1], np.float32)


def test_pycaffe_sees_numpy_while_the_engine_keeps_device_arrays(cupy_double):
    net = mlp()
    x, y = feed(np.random.RandomState(0))
    engine = net.blob_by_name("data")
    assert type(engine.data) is cupy_double.ndarray          # the layers' array
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
        engine.data[...] = x                       # CuPy's rule holds on the device
    data = net.blobs["data"].data
    assert type(data) is np.ndarray and type(net.params["ip1"][0].diff) is np.ndarray
    data[...] = x                                  # pycaffe's way: uploaded lazily
    net.blobs["label"].data = y                    # assigning a host array copies it
    assert type(net.blobs["label"].data) is np.ndarray
    loss = net.forward()["loss"]
    assert type(loss) is np.ndarray and loss.shape == ()
    np.testing.assert_array_equal(engine.data.get(), x)
    np.testing.assert_array_equal(net.blobs["data"].data, x)
    assert isinstance(net.blobs["data"], caffe.Blob)


def test_forward_backward_on_the_device_equals_the_cpu(cupy_double):
    x, y = feed(np.random.RandomState(1))
    backend.set_random_seed(5)
    gpu = mlp()
    out = gpu.forward(data=x, label=y)
    gpu.backward()
    gpu_grads = [b.diff.copy() for b in gpu.params["ip1"]]
    gpu_loss = float(out["loss"])
    backend.set_mode_cpu()
    backend.set_random_seed(5)
    cpu = mlp()
    cpu_loss = float(cpu.forward(data=x, label=y)["loss"])
    cpu.backward()
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    for g, c in zip(gpu_grads, cpu.params["ip1"]):
        np.testing.assert_allclose(g, c.diff, rtol=1e-4, atol=1e-6)


def test_forward_all_returns_host_arrays(cupy_double):
    net = caffe.Net(parse_net_text(MLP_NET.replace("dim: 4 dim: 6", "dim: 2 dim: 6")
                                   .replace("shape { dim: 4 }", "shape { dim: 2 }")),
                    caffe.TEST)
    x, y = feed(np.random.RandomState(2))
    out = net.forward_all(data=x, label=y)
    assert type(out["loss"]) is np.ndarray and out["loss"].shape == (2,)
    on_device = net.forward_all(data=cupy_double.asarray(x), label=cupy_double.asarray(y))
    np.testing.assert_array_equal(on_device["loss"], out["loss"])


def test_weights_saved_from_device_arrays_load_on_the_cpu(cupy_double, tmp_path):
    x, y = feed(np.random.RandomState(3))
    net = mlp()
    expected = float(net.forward(data=x, label=y)["loss"])
    for ext, save in (("caffemodel", net.save), ("h5", net.save_hdf5)):
        path = str(tmp_path / ("w." + ext))
        save(path)
        backend.set_mode_cpu()
        cpu = mlp(weights=path)
        assert float(cpu.forward(data=x, label=y)["loss"]) == pytest.approx(expected, rel=1e-5)
        backend.set_mode_gpu()


class HostLayer(caffe.Layer):
    """A pycaffe Python layer written for NumPy: y = 2 x + b, b learnable."""

    def setup(self, bottom, top):
        self.blobs.add_blob(1)
        self.blobs[0].data[...] = np.array([0.5], np.float32)     # host code, as in pycaffe

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        assert type(bottom[0].data) is np.ndarray
        top[0].data[...] = np.asarray(bottom[0].data) * 2 + self.blobs[0].data[0]

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff * 2
        self.blobs[0].diff[0] += top[0].diff.sum()


def test_python_layers_see_host_arrays_as_in_caffe(cupy_double):
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3]))
    n.double = L.Python(n.data, module=__name__, layer="HostLayer")
    n.ip = L.InnerProduct(n.double, num_output=2, weight_filler=dict(type="gaussian"))
    n.loss = L.Reduction(n.ip)
    net = caffe.Net(n.to_proto(), caffe.TRAIN)
    offset = net.layer_by_name("double").blobs[0]
    assert type(offset.data) is cupy_double.ndarray                  # joined the device
    assert type(net.params["double"][0].data) is np.ndarray          # pycaffe's view
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    net.forward(data=x)
    assert type(net.blob_by_name("double").data) is cupy_double.ndarray
    np.testing.assert_array_equal(net.blobs["double"].data, 2 * x + 0.5)
    net.clear_param_diffs()
    net.backward()
    net.backward()                                  # the param diff accumulates
    assert type(net.blob_by_name("data").diff) is cupy_double.ndarray
    assert type(offset.diff) is cupy_double.ndarray
    expected = 2 * net.blobs["double"].diff.sum()
    assert float(net.params["double"][0].diff[0]) == pytest.approx(expected, rel=1e-5)


def test_netspec_nets_run_on_the_device(cupy_double):
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 1, 8, 8]))
    n.conv = L.Convolution(n.data, num_output=3, kernel_size=3, weight_filler=dict(type="xavier"))
    n.pool = L.Pooling(n.conv, kernel_size=2, stride=2)
    n.relu = L.ReLU(n.pool, in_place=True)
    n.ip = L.InnerProduct(n.relu, num_output=2, weight_filler=dict(type="xavier"))
    before = sum(emulation.launched.values())
    net = caffe.Net(n.to_proto(), caffe.TEST)
    out = net.forward(data=np.ones((2, 1, 8, 8), np.float32))["ip"]
    assert type(out) is np.ndarray and out.shape == (2, 2)
    assert type(net.blob_by_name("ip").data) is cupy_double.ndarray
    assert sum(emulation.launched.values()) > before          # the kernels ran


SOLVER_NET = """
name: "resume"
layer { name: "data" type: "DummyData" top: "x" top: "y"
        dummy_data_param { shape { dim: 4 dim: 5 } shape { dim: 4 dim: 2 }
                           data_filler { type: "constant" value: 0.5 }
                           data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "out"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.3 }
                              bias_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "y" top: "loss" }
"""


def solver(tmp_path, rule, fmt):
    from pycaffe_lowbit.proto import caffe_pb2
    from pycaffe_lowbit.solvers import get_solver
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(parse_net_text(SOLVER_NET))
    p.type, p.base_lr, p.lr_policy, p.max_iter = rule, 0.05, "fixed", 100
    p.momentum, p.weight_decay, p.random_seed = 0.9, 0.001, 3
    tmp_path.mkdir(exist_ok=True)
    p.snapshot_prefix = str(tmp_path / "snap")
    p.snapshot_format = getattr(caffe_pb2.SolverParameter, fmt)
    return get_solver(p)


@pytest.mark.parametrize("rule", ["SGD", "Adam"])
@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_snapshot_and_resume_from_device_arrays_continue_exactly(cupy_double, tmp_path,
                                                                 rule, fmt):
    whole = solver(tmp_path / "a", rule, fmt)
    kernel = {"SGD": "lowbit_sgd_update", "Adam": "lowbit_adam_update"}[rule]
    before = emulation.launched["solver", kernel]
    whole.step(6)
    assert emulation.launched["solver", kernel] >= before + 6   # the fused update ran
    first = solver(tmp_path / "b", rule, fmt)
    first.step(3)
    first.snapshot()
    state = [f for f in os.listdir(str(tmp_path / "b")) if "solverstate" in f][0]
    resumed = solver(tmp_path / "b", rule, fmt)
    resumed.restore(str(tmp_path / "b" / state))
    assert resumed.iter == 3
    resumed.step(3)
    for a, b in zip(whole.net.learnable_params, resumed.net.learnable_params):
        assert type(b.data) is cupy_double.ndarray
        np.testing.assert_array_equal(a.data.get(), b.data.get())


def test_image_data_feeds_device_blobs_with_the_cpus_pixels(cupy_double):
    text = ('layer { name: "images" type: "ImageData" top: "data" top: "label" '
            'image_data_param { source: "%s" batch_size: 2 root_folder: "%s/" } }'
            % (os.path.join(IO, "images_list.txt"), os.path.join(IO, "images")))
    net = caffe.Net(parse_net_text(text), caffe.TEST)
    net.forward()
    assert type(net.blob_by_name("data").data) is cupy_double.ndarray
    device = net.blobs["data"].data.copy(), net.blobs["label"].data.copy()
    backend.set_mode_cpu()
    cpu = caffe.Net(parse_net_text(text), caffe.TEST)
    cpu.forward()
    np.testing.assert_array_equal(device[0], cpu.blobs["data"].data)
    np.testing.assert_array_equal(device[1], cpu.blobs["label"].data)


def test_onnx_export_and_summary_of_a_gpu_mode_net(cupy_double):
    pytest.importorskip("onnx")
    from pycaffe_lowbit.deploy import onnx_export
    net = caffe.Net(os.path.join(paths.ROOT, "models", "lenet", "lenet_deploy.prototxt"),
                    caffe.TEST)
    model = onnx_export.net_to_onnx(net)
    assert {i.name for i in model.graph.initializer} >= {"conv1_W", "ip2_W"}
    assert "conv1" in str(net.summary())


def test_caffe_io_takes_gpu_mode_blobs(cupy_double):
    from pycaffe_lowbit import io
    from pycaffe_lowbit.data import array_to_datum
    net = mlp()
    w = net.layer_by_name("ip1").blobs[0].data                  # the device array
    proto = io.array_to_blobproto(w, diff=net.layer_by_name("ip1").blobs[0].diff)
    np.testing.assert_array_equal(io.blobproto_to_array(proto), w.get())
    np.testing.assert_array_equal(io.blobproto_to_array(
        io.array_to_blobproto(net.params["ip1"][0].data)), w.get())
    datum = io.array_to_datum(w.reshape(1, 5, 6))
    assert len(datum.float_data) == 30
    assert array_to_datum(w.reshape(1, 5, 6)).channels == 1


def test_a_device_mean_writes_as_a_blobproto(cupy_double, tmp_path):
    from pycaffe_lowbit.formats.caffemodel import read_blobproto, write_blobproto
    mean = cupy_double.ones((3, 2, 2), np.float32)
    write_blobproto(mean, str(tmp_path / "mean.binaryproto"))
    np.testing.assert_array_equal(read_blobproto(str(tmp_path / "mean.binaryproto")),
                                  np.ones((1, 3, 2, 2), np.float32))


def _python_layer_solver():
    from pycaffe_lowbit.proto import caffe_pb2
    from pycaffe_lowbit.solvers import get_solver
    n = NetSpec()
    n.data = L.DummyData(shape=dict(dim=[2, 3]), data_filler=dict(type="constant", value=1))
    n.double = L.Python(n.data, module=__name__, layer="HostLayer")
    n.ip = L.InnerProduct(n.double, num_output=2, weight_filler=dict(type="constant", value=0.3))
    n.loss = L.Reduction(n.ip, loss_weight=1)
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(n.to_proto())
    p.base_lr, p.lr_policy, p.momentum, p.max_iter = 0.1, "fixed", 0.9, 10
    return get_solver(p)


def test_a_python_layers_param_trains_on_the_device_as_on_the_cpu(cupy_double):
    gpu = _python_layer_solver()
    gpu.step(3)
    on_device = [backend.to_numpy(b.data) for b in gpu.net.learnable_params]
    backend.set_mode_cpu()
    cpu = _python_layer_solver()
    cpu.step(3)
    for d, c in zip(on_device, cpu.net.learnable_params):
        np.testing.assert_allclose(d, c.data, rtol=1e-6)
    assert on_device[0][0] != 0.5                     # the Python layer's offset moved
