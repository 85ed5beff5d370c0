"""pycaffe's host views in GPU mode (core/synced.py) on the CuPy double: what
``net.blobs``/``net.params`` give is NumPy, written values reach the device
before the engine's next use, the engine's results reach the views, and
nothing is copied that nobody looked at (``synced.TRANSFERS``, and the double's
own ``ndarray.set``/``get`` calls)."""
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend, synced
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import get_solver
from support.helpers import MLP_NET

pytestmark = pytest.mark.double


def mlp(phase=caffe.TRAIN, text=MLP_NET):
    backend.set_random_seed(11)
    return caffe.Net(parse_net_text(text), phase)


def feed(seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(4, 6).astype(np.float32), np.array([0, 1, 2, 1], np.float32)


def transfers():
    return synced.TRANSFERS["upload"], synced.TRANSFERS["download"]


def on_cpu(build):
    """``build()`` in CPU mode (the test stays in GPU mode after)."""
    backend.set_mode_cpu()
    try:
        return build()
    finally:
        backend.set_mode_gpu()


def test_a_write_through_the_view_is_what_the_device_computes_on(cupy_double):
    x, y = feed(0)
    gpu = mlp()
    gpu.blobs["data"].data[...] = x              # pycaffe's way, no copy to the device by hand
    gpu.blobs["label"].data[...] = y
    gpu.params["ip1"][1].data[...] = 0.25        # a param edited in place
    gpu_loss = float(gpu.forward()["loss"])
    gpu.backward()

    def cpu_run():
        cpu = mlp()
        cpu.blobs["data"].data[...] = x
        cpu.blobs["label"].data[...] = y
        cpu.params["ip1"][1].data[...] = 0.25
        loss = float(cpu.forward()["loss"])
        cpu.backward()
        return loss, cpu.params["ip1"][0].diff.copy()
    cpu_loss, cpu_grad = on_cpu(cpu_run)
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    np.testing.assert_allclose(gpu.params["ip1"][0].diff, cpu_grad, rtol=1e-4, atol=1e-6)
    assert type(gpu.blob_by_name("ip1").data) is cupy_double.ndarray


def test_the_view_shows_what_the_engine_computed_after_each_pass(cupy_double):
    net = mlp(caffe.TEST)
    for seed in (1, 2):
        x, y = feed(seed)
        out = net.forward(data=x, label=y)
        assert type(out["loss"]) is np.ndarray
        view = net.blobs["ip2"].data
        assert type(view) is np.ndarray
        np.testing.assert_array_equal(view, net.blob_by_name("ip2").data.get())
        np.testing.assert_array_equal(net.blobs["data"].data, x)
        held = view
    stale = held.copy()
    net.forward(data=feed(3)[0], label=feed(3)[1])
    np.testing.assert_array_equal(held, stale)        # a held array waits for the next view:
    again = net.blobs["ip2"].data                     # reading .data again downloads into the
    assert again is held                              # same host memory (as Caffe's CPU copy),
    assert not np.array_equal(held, stale)            # though the layer assigned a new top array
    np.testing.assert_array_equal(held, net.blob_by_name("ip2").data.get())


def test_forward_and_backward_kwargs_return_numpy(cupy_double):
    text = MLP_NET.replace('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" '
                           'bottom: "label" top: "loss" }', "")
    net = mlp(caffe.TRAIN, "force_backward: true\n" + text)
    x, y = feed(3)
    out = net.forward(data=x, label=y)
    assert set(out) == {"ip2", "label"} and all(type(v) is np.ndarray for v in out.values())
    grads = net.backward(ip2=np.ones((4, 3), np.float32), label=np.zeros(4, np.float32))
    assert type(grads["data"]) is np.ndarray and grads["data"].shape == (4, 6)
    w2 = net.params["ip2"][0].data
    relu = net.blobs["ip1"].data > 0
    np.testing.assert_allclose(grads["data"],
                               (np.ones((4, 3)) @ w2 * relu) @ net.params["ip1"][0].data,
                               rtol=1e-5, atol=1e-6)


def test_nothing_is_copied_that_nobody_looked_at(cupy_double, monkeypatch):
    calls = {"set": 0}
    original_set = cupy_double.ndarray.set

    def counted_set(self, arr, stream=None):
        calls["set"] += 1
        return original_set(self, arr, stream)
    monkeypatch.setattr(cupy_double.ndarray, "set", counted_set)
    net = mlp()
    x, y = feed(4)
    net.forward(data=x, label=y)            # kwargs go straight to the device arrays
    before = transfers()
    for _ in range(3):
        net.forward_prefilled()             # the engine alone: no copy either way
        net.backward_all()
    assert transfers() == before
    for _ in range(3):                      # pycaffe's loop: the outputs come back
        out = net.forward()
        net.backward()
    up, down = transfers()
    assert up == before[0]                  # read-only snapshots: nothing to upload
    assert down == before[1] + 3 + 2        # the loss each time, the input diffs once
    with pytest.raises(ValueError, match="read-only"):
        out["loss"][...] = 0
    before = transfers()
    net.params["ip2"][0].data.sum()         # one download...
    net.params["ip2"][0].data.sum()         # ...not two: the host copy is current
    assert transfers() == (before[0], before[1] + 1)
    net.forward_prefilled()                 # a writable view counts as written: one upload
    assert transfers() == (before[0] + 1, before[1] + 1)
    net.forward_prefilled()
    assert transfers() == (before[0] + 1, before[1] + 1)
    assert calls["set"] == 1                # the double saw the one upload
    net.blobs["ip2"].data[...] = 1          # a top the layer assigns anew: the written host
    net.forward_prefilled()                 # copy is uploaded once before it is handed on
    assert transfers()[0] == before[0] + 2 and calls["set"] == 2
    net.forward_prefilled()                 # (another blob may share the old array)
    assert transfers()[0] == before[0] + 2 and calls["set"] == 2


def test_a_param_edited_through_net_params_trains_as_on_the_cpu(cupy_double):
    def run():
        p = caffe_pb2.SolverParameter()
        p.net_param.CopyFrom(parse_net_text(MLP_NET.replace(
            'layer { name: "data" type: "Input" top: "data" top: "label"\n'
            '        input_param { shape { dim: 4 dim: 6 } shape { dim: 4 } } }',
            'layer { name: "data" type: "DummyData" top: "data" top: "label" '
            'dummy_data_param { shape { dim: 4 dim: 6 } shape { dim: 4 } '
            'data_filler { type: "constant" value: 0.5 } data_filler { type: "constant" '
            'value: 1 } } }')))
        p.base_lr, p.lr_policy, p.momentum, p.max_iter, p.random_seed = 0.1, "fixed", 0.9, 9, 5
        solver = get_solver(p)
        solver.net.params["ip1"][0].data[...] = 0.1          # edited through the view
        solver.net.params["ip2"][0].data[0, :] = -0.2
        solver.step(2)
        first = solver.net.params["ip1"][0].data.copy()
        solver.net.params["ip2"][1].data[...] += 1            # edited again mid-training
        solver.step(2)
        return first, [b.data.copy() for ps in solver.net.params.values() for b in ps], \
            float(solver.net.blobs["loss"].data)
    gpu = run()
    cpu = on_cpu(run)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-5, atol=1e-7)
    for g, c in zip(gpu[1], cpu[1]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-7)
    assert gpu[2] == pytest.approx(cpu[2], rel=1e-5)


def test_clear_param_diffs_zeroes_a_diff_the_user_holds(cupy_double):
    net = mlp()
    net.forward(data=feed(5)[0], label=feed(5)[1])
    net.backward()
    held = net.params["ip1"][0].diff
    assert np.abs(held).max() > 0
    before = transfers()
    net.clear_param_diffs()
    assert (held == 0).all() and transfers() == before       # both copies zeroed, no copy
    assert float(abs(net.layer_by_name("ip1").blobs[0].diff).max()) == 0
    net.backward()
    assert np.abs(net.params["ip1"][0].diff).max() > 0


def test_save_copy_from_and_share_with_see_the_views(cupy_double, tmp_path):
    net = mlp()
    net.params["ip1"][0].data[...] = 0.5                      # not uploaded yet
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    net.params["ip1"][0].data[...] = -1
    net.copy_from(path)                                        # the device gets 0.5...
    assert (net.params["ip1"][0].data == 0.5).all()            # ...and the view shows it
    other = mlp()
    other.share_with(net)
    net.params["ip2"][1].data[...] = 7
    assert (other.params["ip2"][1].data == 7).all()            # one memory, one head
    loaded = on_cpu(lambda: caffe.Net(parse_net_text(MLP_NET), caffe.TRAIN, weights=path))
    assert (loaded.params["ip1"][0].data == 0.5).all()


def test_shared_params_have_one_head(cupy_double):
    text = MLP_NET.replace('inner_product_param { num_output: 3 weight_filler',
                           'param { name: "w2" } inner_product_param { num_output: 3 '
                           'weight_filler').replace(
        'layer { name: "loss"',
        'layer { name: "ip3" type: "InnerProduct" bottom: "ip1" top: "ip3" param { name: "w2" }'
        ' inner_product_param { num_output: 3 } }\nlayer { name: "loss"')
    net = mlp(caffe.TRAIN, text)
    net.params["ip3"][0].data[...] = 0.3          # written through the sharing layer's view
    out = net.forward(data=np.ones((4, 6), np.float32), label=np.zeros(4, np.float32))
    assert (net.params["ip2"][0].data == 0.3).all()
    np.testing.assert_allclose(net.blobs["ip2"].data, net.blobs["ip3"].data, rtol=1e-6)
    assert type(out["loss"]) is np.ndarray


def test_reshape_keeps_or_reallocates_the_host_copy(cupy_double):
    blob = Blob((2, 3))
    view = blob.pycaffe_view()
    view.data[...] = np.arange(6).reshape(2, 3)
    before = transfers()
    blob.reshape(3, 2)                             # same count: the same memory and head
    np.testing.assert_array_equal(view.data, np.arange(6).reshape(3, 2))
    assert transfers() == before
    np.testing.assert_array_equal(blob.data.get(), np.arange(6).reshape(3, 2))
    view.data[...] = 5
    blob.reshape(4, 2)                             # a new count: new zeros
    assert view.data.shape == (4, 2) and (view.data == 0).all()
    other = Blob((8,))
    other.share_data(view)                         # a view shares as its blob
    other.pycaffe_view().data[...] = 2
    assert (view.data == 2).all() and (blob.data.get() == 2).all()


def test_an_array_assigned_by_the_engine_keeps_the_host_copy(cupy_double):
    blob = Blob((2, 3))
    sharer = Blob((6,))
    sharer.share_data(blob)                        # one SyncedArray for both
    held = blob.pycaffe_view().data
    held[...] = 4                                  # written, not yet uploaded
    blob.data = cupy_double.full((2, 3), 7, np.float32)    # a layer's ``top.data = y``
    assert (sharer.data.get() == 4).all()          # the write reached the old array first
    assert blob.pycaffe_view().data is held        # the same host memory...
    assert (held == 7).all()                       # ...now holding the new array's values
    assert sharer.pycaffe_view().data is not held  # the sharer downloads into its own
    np.testing.assert_array_equal(sharer.pycaffe_view().data, np.full(6, 4, np.float32))
    blob.data = cupy_double.zeros((2, 3), np.float64)      # cast to the blob's dtype
    assert blob.pycaffe_view().data is held and not held.any()


def test_set_input_arrays_and_python_layers_in_gpu_mode(cupy_double):
    net = caffe.Net(parse_net_text(
        'layer { name: "m" type: "MemoryData" top: "d" top: "l" '
        'memory_data_param { batch_size: 2 channels: 1 height: 1 width: 3 } }\n'
        'layer { name: "p" type: "Python" bottom: "d" top: "p" '
        'python_param { module: "%s" layer: "Times10" } }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "p" top: "ip" '
        'inner_product_param { num_output: 1 weight_filler { type: "constant" value: 1 } } }'
        % __name__), caffe.TEST)
    data = np.arange(12, dtype=np.float32).reshape(4, 1, 1, 3)
    net.set_input_arrays(data, np.arange(4, dtype=np.float32))
    for batch in (0, 1):
        out = net.forward()
        np.testing.assert_array_equal(net.blobs["d"].data, data[2 * batch:2 * batch + 2])
        np.testing.assert_allclose(out["ip"].ravel(),
                                   10 * data[2 * batch:2 * batch + 2].sum(axis=(1, 2, 3)))
    assert type(net.blob_by_name("p").data) is cupy_double.ndarray


class Times10(caffe.Layer):
    """A Python layer as pycaffe's tests write them: NumPy in, NumPy out."""

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        assert type(bottom[0].data) is np.ndarray
        top[0].data[...] = 10 * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = 10 * top[0].diff


def test_snapshot_and_restore_after_view_edits(cupy_double, tmp_path):
    def make():
        p = caffe_pb2.SolverParameter()
        p.net_param.CopyFrom(parse_net_text(MLP_NET))
        p.base_lr, p.lr_policy, p.momentum, p.max_iter = 0.1, "fixed", 0.9, 10
        p.snapshot_prefix = str(tmp_path / "s")
        return get_solver(p)
    x, y = feed(6)
    solver = make()
    solver.net.blobs["data"].data[...] = x
    solver.net.blobs["label"].data[...] = y
    solver.step(1)
    solver.net.params["ip2"][1].data[...] = 3                 # an edit, then a snapshot
    solver.snapshot()
    state = str(tmp_path / "s_iter_1.solverstate")
    resumed = make()
    resumed.restore(state)
    np.testing.assert_array_equal(resumed.net.params["ip2"][1].data, 3)
    for a, b in zip(solver.net.params.values(), resumed.net.params.values()):
        for pa, pb in zip(a, b):
            np.testing.assert_array_equal(pa.data, pb.data)


def test_on_the_numpy_backend_the_view_is_the_blob():
    net = mlp()
    blob = net.blob_by_name("data")
    assert net.blobs["data"] is blob and blob.pycaffe_view() is blob
    assert net.blobs["data"].data is blob.data                # zero copy
    assert net.params["ip1"] is net.layer_by_name("ip1").blobs        # the list itself
    assert net.layer_dict["ip1"] is net.layer_by_name("ip1")
    before = transfers()
    net.forward(data=feed(7)[0], label=feed(7)[1])
    net.blobs["ip2"].data[...] = 1
    assert transfers() == before


def test_layer_dict_gives_pycaffe_views_and_net_layers_the_engines_blobs(cupy_double):
    net = mlp()
    layer = net.layer_dict["ip1"]
    assert layer.type == "InnerProduct" and isinstance(layer, type(net.layers[1]))
    assert net.layer_dict["ip1"] is layer and net.layer_dict["relu1"] is net.layers[2]
    assert type(layer.blobs[0].data) is np.ndarray
    layer.blobs[0].data[...] = 1
    assert type(net.layers[1].blobs[0].data) is cupy_double.ndarray     # the engine's list
    assert (net.layers[1].blobs[0].data.get() == 1).all()
