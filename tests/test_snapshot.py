"""Solver snapshots (.caffemodel + .solverstate, or HDF5) and restore, as Caffe.

Most tests drive ``solvers.snapshot`` with a stand-in object carrying the
Solver contract's attributes (param, net, iter, current_step, history); the
tests at the end run the real solvers when they are importable.
"""
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import types

import h5py
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.io import caffemodel
from pycaffe_lowbit.io.blobproto import array_from_proto
from pycaffe_lowbit.io.text import parse_net_text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import snapshot as snap

from helpers import MLP_NET

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "golden", "solvers")

MLP = MLP_NET


def make_net(text=MLP):
    return caffe.Net(parse_net_text(textwrap.dedent(text)), caffe.TRAIN)


def stand_in(prefix, seed=0, iteration=7, current_step=2, history_factor=1, fmt=None,
             snapshot_diff=False):
    """An object with the Solver contract's attributes that snapshot/restore use."""
    caffe.set_random_seed(seed)
    net = make_net()
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(history_factor):
        for p in net.learnable_params:
            b = Blob(p.shape)
            b.data[...] = rng.standard_normal(p.shape)
            history.append(b)
    param = caffe_pb2.SolverParameter(snapshot_prefix=str(prefix), snapshot_diff=snapshot_diff)
    if fmt is not None:
        param.snapshot_format = fmt
    return types.SimpleNamespace(param=param, net=net, iter=iteration,
                                 current_step=current_step, history=history)


def weights(net):
    return [p.data.copy() for p in net.learnable_params]


def assert_same_state(a, b):
    assert a.iter == b.iter and a.current_step == b.current_step
    for x, y in zip(weights(a.net), weights(b.net)):
        np.testing.assert_array_equal(x, y)
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history):
        np.testing.assert_array_equal(x.data, y.data)


# -- binary proto ----------------------------------------------------------------

def test_binary_snapshot_files_state_and_log(tmp_path, caplog):
    s = stand_in(tmp_path / "mlp", iteration=7, current_step=2)
    with caplog.at_level(logging.INFO, logger="pycaffe_lowbit"):
        model = snap.snapshot(s)
    prefix = str(tmp_path / "mlp")
    assert model == prefix + "_iter_7.caffemodel"
    assert os.path.isfile(model) and os.path.isfile(prefix + "_iter_7.solverstate")
    assert "Snapshotting to binary proto file %s" % model in caplog.text
    assert ("Snapshotting solver state to binary proto file %s_iter_7.solverstate"
            % prefix) in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["mlp_iter_7.caffemodel", "mlp_iter_7.solverstate"]

    state = caffemodel.read_binary_proto(prefix + "_iter_7.solverstate", caffe_pb2.SolverState)
    assert state.iter == 7 and state.current_step == 2
    assert state.learned_net == model                     # the path exactly as written
    assert len(state.history) == len(s.history) == 4
    for proto, blob in zip(state.history, s.history):
        assert tuple(proto.shape.dim) == blob.shape
        np.testing.assert_array_equal(array_from_proto(proto), blob.data)

    net_param = caffemodel.read_net_binary(model)
    layers = {l.name: l for l in net_param.layer}
    np.testing.assert_array_equal(array_from_proto(layers["ip1"].blobs[0]),
                                  s.net.params["ip1"][0].data)
    assert len(layers["ip1"].blobs[0].diff) == 0          # snapshot_diff false


def test_binary_snapshot_diff(tmp_path):
    s = stand_in(tmp_path / "d", snapshot_diff=True)
    s.net.params["ip2"][0].diff[...] = 0.25
    model = snap.snapshot(s)
    layers = {l.name: l for l in caffemodel.read_net_binary(model).layer}
    np.testing.assert_array_equal(array_from_proto(layers["ip2"].blobs[0], diff=True), 0.25)


def test_binary_restore_round_trip(tmp_path, caplog):
    a = stand_in(tmp_path / "mlp", seed=1, iteration=40, current_step=3)
    snap.snapshot(a)
    b = stand_in(tmp_path / "other", seed=2, iteration=0, current_step=0)
    assert not np.array_equal(weights(a.net)[0], weights(b.net)[0])
    with caplog.at_level(logging.INFO, logger="pycaffe_lowbit"):
        snap.restore(b, str(tmp_path / "mlp_iter_40.solverstate"))
    assert "SGDSolver: restoring history" in caplog.text
    assert_same_state(a, b)


def test_snapshot_float64_history(tmp_path):
    a = stand_in(tmp_path / "f", seed=1)
    for h in a.history:
        h.astype(np.float64)
        h.data[...] = np.pi
    snap.snapshot(a)
    state = caffemodel.read_binary_proto(str(tmp_path / "f_iter_7.solverstate"),
                                         caffe_pb2.SolverState)
    assert len(state.history[0].double_data) == a.history[0].count
    b = stand_in(tmp_path / "g", seed=2)
    snap.restore(b, str(tmp_path / "f_iter_7.solverstate"))
    np.testing.assert_array_equal(b.history[0].data, np.float32(np.pi))


def test_learned_net_is_relative_and_resolved(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "snaps").mkdir(parents=True)
    monkeypatch.chdir(work)
    a = stand_in("snaps/mlp", seed=1, iteration=5)
    model = snap.snapshot(a)
    assert model == "snaps/mlp_iter_5.caffemodel"
    state = caffemodel.read_binary_proto("snaps/mlp_iter_5.solverstate", caffe_pb2.SolverState)
    assert state.learned_net == "snaps/mlp_iter_5.caffemodel"
    # As Caffe: relative to the working directory.
    b = stand_in("x", seed=2, iteration=0)
    snap.restore(b, "snaps/mlp_iter_5.solverstate")
    assert_same_state(a, b)
    # From elsewhere: found beside the state file.
    monkeypatch.chdir(tmp_path)
    c = stand_in("x", seed=3, iteration=0)
    snap.restore(c, str(work / "snaps" / "mlp_iter_5.solverstate"))
    assert_same_state(a, c)


def test_missing_learned_net_is_a_clear_error(tmp_path):
    a = stand_in(tmp_path / "m", seed=1)
    model = snap.snapshot(a)
    os.remove(model)
    with pytest.raises(FileNotFoundError, match="m_iter_7.solverstate.*learned net"):
        snap.restore(stand_in(tmp_path / "n", seed=2), str(tmp_path / "m_iter_7.solverstate"))


def test_state_without_learned_net_keeps_weights(tmp_path):
    a = stand_in(tmp_path / "m", seed=1, iteration=9)
    state = snap.solver_state(a, "unused")
    state.ClearField("learned_net")
    path = str(tmp_path / "bare.solverstate")
    caffemodel.write_binary_proto(state, path)
    b = stand_in(tmp_path / "n", seed=2)
    before = weights(b.net)
    snap.restore(b, path)
    assert b.iter == 9
    for x, y in zip(before, weights(b.net)):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(b.history[3].data, a.history[3].data)


# -- errors ------------------------------------------------------------------------

def test_missing_state_file(tmp_path):
    s = stand_in(tmp_path / "m")
    for name in ("nope.solverstate", "nope.solverstate.h5"):
        with pytest.raises(FileNotFoundError) as e:
            snap.restore(s, str(tmp_path / name))
        assert name in str(e.value)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe garbage \x00\x01" * 10,
                                     b"\x89HDF\r\n\x1a\n not really"])
def test_corrupt_state_file(tmp_path, content):
    s = stand_in(tmp_path / "m")
    path = tmp_path / "bad.solverstate"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.solverstate"):
        snap.restore(s, str(path))
    h5 = tmp_path / "bad.solverstate.h5"
    h5.write_bytes(content)
    with pytest.raises(ValueError, match="bad.solverstate.h5"):
        snap.restore(s, str(h5))


def test_truncated_state_file(tmp_path):
    a = stand_in(tmp_path / "m", seed=1)
    snap.snapshot(a)
    path = tmp_path / "m_iter_7.solverstate"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="m_iter_7.solverstate"):
        snap.restore(stand_in(tmp_path / "n", seed=2), str(path))


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_history_count_and_shape_mismatch(tmp_path, fmt):
    ext = ".h5" if fmt == "HDF5" else ""
    a = stand_in(tmp_path / "m", seed=1, fmt=caffe_pb2.SolverParameter.SnapshotFormat.Value(fmt))
    snap.snapshot(a)
    state = str(tmp_path / ("m_iter_7.solverstate" + ext))
    adam_like = stand_in(tmp_path / "n", seed=2, history_factor=2)
    with pytest.raises(ValueError, match="Incorrect length of history blobs.*has 4.*has 8"):
        snap.restore(adam_like, state)
    other = stand_in(tmp_path / "n", seed=2)
    other.history[1] = Blob((3,))
    with pytest.raises(ValueError, match=r"m_iter_7\.solverstate.*history blob 1 has shape "
                                         r"\(5,\) but the solver's is \(3,\)"):
        snap.restore(other, state)
    assert other.iter == 7 and other.history[0].data.sum() != a.history[0].data.sum()


def test_missing_snapshot_folder(tmp_path):
    s = stand_in(tmp_path / "no" / "such" / "dir" / "m")
    with pytest.raises(FileNotFoundError, match="snapshot_prefix"):
        snap.snapshot(s)


# -- HDF5 --------------------------------------------------------------------------

def test_hdf5_snapshot_layout_and_round_trip(tmp_path, caplog):
    a = stand_in(tmp_path / "h", seed=1, iteration=12, current_step=1,
                 fmt=caffe_pb2.SolverParameter.HDF5)
    with caplog.at_level(logging.INFO, logger="pycaffe_lowbit"):
        model = snap.snapshot(a)
    prefix = str(tmp_path / "h")
    state_path = prefix + "_iter_12.solverstate.h5"
    assert model == prefix + "_iter_12.caffemodel.h5"
    assert "Snapshotting to HDF5 file %s" % model in caplog.text
    assert "Snapshotting solver state to HDF5 file %s" % state_path in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["h_iter_12.caffemodel.h5", "h_iter_12.solverstate.h5"]

    with h5py.File(state_path, "r") as f:
        assert sorted(f.keys()) == ["current_step", "history", "iter", "learned_net"]
        assert f["iter"].shape == () and f["iter"].dtype == np.int32 and f["iter"][()] == 12
        assert f["current_step"][()] == 1
        ln = f["learned_net"]
        assert ln.shape == () and ln.dtype.kind == "S"
        assert ln.id.get_type().get_strpad() == h5py.h5t.STR_NULLTERM
        assert ln[()].rstrip(b"\0").decode() == model
        assert sorted(f["history"].keys()) == ["0", "1", "2", "3"]
        for i, blob in enumerate(a.history):
            d = f["history"][str(i)]
            assert d.dtype == np.float32 and d.shape == blob.shape
            np.testing.assert_array_equal(d[()], blob.data)
    with h5py.File(model, "r") as f:
        assert list(f.keys()) == ["data"]
        np.testing.assert_array_equal(f["data/ip1/0"][()], a.net.params["ip1"][0].data)

    b = stand_in(tmp_path / "o", seed=2, iteration=0, current_step=0)
    snap.restore(b, state_path)
    assert_same_state(a, b)


def test_hdf5_snapshot_diff(tmp_path):
    a = stand_in(tmp_path / "h", fmt=caffe_pb2.SolverParameter.HDF5, snapshot_diff=True)
    a.net.params["ip1"][1].diff[...] = -2.0
    model = snap.snapshot(a)
    with h5py.File(model, "r") as f:
        assert sorted(f.keys()) == ["data", "diff"]
        np.testing.assert_array_equal(f["diff/ip1/1"][()], -2.0)
        np.testing.assert_array_equal(f["data/ip1/1"][()], a.net.params["ip1"][1].data)
        assert "relu1" in f["diff"] and len(f["diff/relu1"]) == 0


def test_hdf5_state_without_learned_net(tmp_path):
    a = stand_in(tmp_path / "h", seed=1, iteration=3, fmt=caffe_pb2.SolverParameter.HDF5)
    snap.snapshot(a)
    path = str(tmp_path / "h_iter_3.solverstate.h5")
    with h5py.File(path, "a") as f:
        del f["learned_net"]
    b = stand_in(tmp_path / "o", seed=2)
    before = weights(b.net)
    snap.restore(b, path)
    assert b.iter == 3
    np.testing.assert_array_equal(before[0], weights(b.net)[0])


# -- atomicity -----------------------------------------------------------------------

class _Crash(Exception):
    pass


def _crashing_open(real_open):
    """open() whose binary writes put half the bytes on disk, then raise."""
    class Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def _half(self, data):
            data = bytes(data)
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise _Crash("disk gone")

        def write(self, data):
            self._half(data)

        def writelines(self, pieces):
            self._half(b"".join(bytes(p) for p in pieces))

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Half(f) if "w" in mode else f
    return fake_open


@pytest.mark.parametrize("target", ["model", "state"])
def test_crash_while_writing_keeps_previous_binary_snapshot(tmp_path, monkeypatch, target):
    a = stand_in(tmp_path / "m", seed=1, iteration=10)
    snap.snapshot(a)
    before = sorted(os.listdir(tmp_path))
    saved = {n: (tmp_path / n).read_bytes() for n in before}
    old_history = [h.data.copy() for h in a.history]
    # Same iteration again (e.g. resumed at 10 and snapshotting at 10), new values.
    for p in a.net.learnable_params:
        p.data[...] += 1
    for h in a.history:
        h.data[...] -= 1
    if target == "model":
        monkeypatch.setattr(caffemodel, "open", _crashing_open(open), raising=False)
    else:
        real = caffemodel.write_net_binary

        def model_ok_then_crash(net_param, path):
            real(net_param, path)
            monkeypatch.setattr(caffemodel, "open", _crashing_open(open), raising=False)
        monkeypatch.setattr(caffemodel, "write_net_binary", model_ok_then_crash)
    with pytest.raises(_Crash):
        snap.snapshot(a)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before            # no temporary left behind
    assert (tmp_path / "m_iter_10.solverstate").read_bytes() == saved["m_iter_10.solverstate"]
    if target == "model":
        assert (tmp_path / "m_iter_10.caffemodel").read_bytes() == saved["m_iter_10.caffemodel"]
    b = stand_in(tmp_path / "o", seed=2)
    snap.restore(b, str(tmp_path / "m_iter_10.solverstate"))   # still loads
    assert b.iter == 10
    np.testing.assert_array_equal(b.history[0].data, old_history[0])


def test_crash_while_writing_keeps_previous_hdf5_snapshot(tmp_path, monkeypatch):
    a = stand_in(tmp_path / "h", seed=1, iteration=10, fmt=caffe_pb2.SolverParameter.HDF5)
    snap.snapshot(a)
    before = sorted(os.listdir(tmp_path))
    old_history = [h.data.copy() for h in a.history]
    for h in a.history:
        h.data[...] = 0
    real = h5py.Group.create_dataset

    def crash_on_second_history(self, name, *args, **kwargs):
        if self.name == "/history" and name == "2":
            raise _Crash("disk gone")
        return real(self, name, *args, **kwargs)
    monkeypatch.setattr(h5py.Group, "create_dataset", crash_on_second_history)
    with pytest.raises(_Crash):
        snap.snapshot(a)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == before
    b = stand_in(tmp_path / "o", seed=2)
    snap.restore(b, str(tmp_path / "h_iter_10.solverstate.h5"))
    for x, y in zip(old_history, b.history):
        np.testing.assert_array_equal(x, y.data)


_KILLED_WRITER = r"""
import os, sys, time, types
import numpy as np
sys.path.insert(0, sys.argv[3])
import test_snapshot as t
from pycaffe_lowbit.io import caffemodel
from pycaffe_lowbit.solvers import snapshot as snap

a = t.stand_in(sys.argv[1], seed=1, iteration=10)
for h in a.history:
    h.data[...] = 0
real_open = open

class Slow:
    def __init__(self, f): self.f = f
    def __enter__(self): return self
    def __exit__(self, *e): self.f.close()
    def write(self, data):
        data = bytes(data)
        self.f.write(data[:len(data) // 2]); self.f.flush(); os.fsync(self.f.fileno())
        open(sys.argv[2], "w").close()          # tell the parent: half written
        time.sleep(60)
    def writelines(self, pieces):
        self.write(b"".join(bytes(p) for p in pieces))

def slow_open(path, mode="r", *args, **kwargs):
    f = real_open(path, mode, *args, **kwargs)
    return Slow(f) if "w" in mode else f

caffemodel.open = slow_open
snap.snapshot(a)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_while_writing_keeps_previous_snapshot(tmp_path):
    a = stand_in(tmp_path / "m", seed=1, iteration=10)
    snap.snapshot(a)
    saved = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    flag = tmp_path / "half_written"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "m"),
                             str(flag), os.path.dirname(__file__)])
    try:
        deadline = time.time() + 60
        while not flag.exists():
            assert proc.poll() is None, "writer exited early"
            assert time.time() < deadline, "writer never got to the write"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    flag.unlink()
    for name, data in saved.items():                        # untouched
        assert (tmp_path / name).read_bytes() == data
    leftovers = set(os.listdir(tmp_path)) - set(saved)
    assert leftovers and all(n.startswith(".m_iter_10.caffemodel.") and n.endswith(".tmp")
                             for n in leftovers)            # only a hidden temporary
    b = stand_in(tmp_path / "o", seed=2)
    snap.restore(b, str(tmp_path / "m_iter_10.solverstate"))
    assert_same_state(a, b)


# -- Caffe's own snapshot (golden) -----------------------------------------------------

def lenet_train_net():
    """The golden LeNet TRAIN net, with its Data layer replaced by an Input layer."""
    from pycaffe_lowbit.io.text import read_net_param
    param = read_net_param(os.path.join(GOLDEN, "lenet_train_test.prototxt"))
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    for lp in param.layer:
        if lp.type == "Data":
            if any(r.phase == caffe_pb2.TEST for r in lp.include):
                continue
            inp = out.layer.add(name=lp.name, type="Input", top=list(lp.top))
            inp.input_param.shape.add(dim=[64, 1, 28, 28])
            inp.input_param.shape.add(dim=[64])
        else:
            out.layer.add().CopyFrom(lp)
    return caffe.Net(out, caffe.TRAIN)


def test_restore_caffe_golden_solverstate(tmp_path, monkeypatch):
    net = lenet_train_net()
    assert len(net.learnable_params) == 8
    s = types.SimpleNamespace(param=caffe_pb2.SolverParameter(), net=net, iter=0,
                              current_step=5,
                              history=[Blob(p.shape) for p in net.learnable_params])
    state_path = os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate")
    monkeypatch.chdir(tmp_path)      # learned_net is relative: found beside the state
    snap.restore(s, state_path)
    assert s.iter == 20 and s.current_step == 0
    state = caffemodel.read_binary_proto(state_path, caffe_pb2.SolverState)
    assert state.learned_net == "lenet_resume_iter_20.caffemodel"
    for blob, p, proto in zip(s.history, net.learnable_params, state.history):
        assert blob.shape == p.shape
        np.testing.assert_array_equal(blob.data, array_from_proto(proto))
    golden = np.load(os.path.join(GOLDEN, "resume.npz"))
    np.testing.assert_array_equal(net.params["conv1"][0].data, golden["snapshot__conv1__0"])
    np.testing.assert_array_equal(net.params["ip2"][1].data, golden["snapshot__ip2__1"])
    np.testing.assert_array_equal(net.params["ip1"][0].data[:16],
                                  golden["snapshot__ip1__0__rows0_16"])
    assert int(golden["restored_iter"]) == 20
    # Our own snapshot of it is byte-compatible: the same state message.
    s.param.snapshot_prefix = "lenet_resume"
    model = snap.snapshot(s)
    assert model == "lenet_resume_iter_20.caffemodel"
    ours = caffemodel.read_binary_proto("lenet_resume_iter_20.solverstate", caffe_pb2.SolverState)
    assert ours == state


# -- the real solvers ------------------------------------------------------------------

class Feeder:
    """Feeds the Input blobs from the iteration number alone, so a resumed
    run sees the same data as an uninterrupted one."""

    def __init__(self, solver):
        self.solver = solver

    def on_start(self):
        net, it = self.solver.net, self.solver.iter
        rng = np.random.default_rng(1000 + it)
        net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
        net.blobs["label"].data[...] = rng.integers(0, 3, net.blobs["label"].shape)

    def on_gradients_ready(self):
        pass


SOLVER_SETTINGS = {
    "SGD": 'base_lr: 0.1 momentum: 0.9 weight_decay: 0.001 lr_policy: "multistep" '
           'gamma: 0.5 stepvalue: 3 stepvalue: 7',
    "Adam": 'base_lr: 0.01 momentum: 0.9 momentum2: 0.999 lr_policy: "fixed"',
    "AdaDelta": 'base_lr: 1.0 momentum: 0.95 delta: 1e-6 lr_policy: "fixed"',
}


def real_solver(tmp_path, kind, seed, fmt="BINARYPROTO", snapshot_every=5):
    from pycaffe_lowbit import solvers
    from pycaffe_lowbit.io.text import parse_solver_text
    param = parse_solver_text('type: "%s" %s max_iter: 10 display: 0 snapshot: %d '
                              'snapshot_format: %s random_seed: %d'
                              % (kind, SOLVER_SETTINGS[kind], snapshot_every, fmt, seed))
    param.snapshot_prefix = str(tmp_path / kind)
    param.net_param.CopyFrom(parse_net_text(MLP))
    s = solvers.get_solver(param)
    s.add_callback(Feeder(s))
    return s


@pytest.mark.parametrize("kind,fmt", [("SGD", "BINARYPROTO"), ("Adam", "BINARYPROTO"),
                                      ("AdaDelta", "BINARYPROTO"), ("SGD", "HDF5")])
def test_resume_continues_bit_for_bit(tmp_path, kind, fmt):
    straight = real_solver(tmp_path, kind, seed=11, fmt=fmt)
    n = len(straight.net.learnable_params)
    assert len(straight.history) == (2 * n if kind in ("Adam", "AdaDelta") else n)
    straight.step(10)
    ext = ".h5" if fmt == "HDF5" else ""
    state = str(tmp_path / ("%s_iter_5.solverstate%s" % (kind, ext)))
    assert os.path.exists(state)
    assert os.path.exists(str(tmp_path / ("%s_iter_10.solverstate%s" % (kind, ext))))
    resumed = real_solver(tmp_path, kind, seed=99, fmt=fmt, snapshot_every=0)
    resumed.restore(state)
    assert resumed.iter == 5
    if kind == "SGD":
        assert resumed.current_step == 1                   # passed stepvalue 3
    resumed.step(5)
    assert resumed.iter == 10 and resumed.current_step == straight.current_step
    assert_same_state(straight, resumed)


def test_solve_with_resume_file(tmp_path):
    straight = real_solver(tmp_path, "SGD", seed=11)
    straight.solve()
    resumed = real_solver(tmp_path, "SGD", seed=5, snapshot_every=0)
    resumed.param.snapshot_after_train = False
    resumed.solve(str(tmp_path / "SGD_iter_5.solverstate"))
    assert_same_state(straight, resumed)


def test_real_solver_restores_caffe_golden_state(tmp_path, monkeypatch):
    net = lenet_train_net()
    param = caffe_pb2.SolverParameter(type="SGD", base_lr=0.01, momentum=0.9,
                                      lr_policy="fixed")
    param.net_param.CopyFrom(net._param)
    param.net_param.ClearField("state")
    from pycaffe_lowbit import solvers
    s = solvers.get_solver(param)
    assert len(s.history) == 8
    monkeypatch.chdir(tmp_path)
    s.restore(os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate"))
    assert s.iter == 20
    state = caffemodel.read_binary_proto(os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate"),
                                         caffe_pb2.SolverState)
    for blob, proto in zip(s.history, state.history):
        np.testing.assert_array_equal(blob.data, array_from_proto(proto))
    golden = np.load(os.path.join(GOLDEN, "resume.npz"))
    np.testing.assert_array_equal(s.net.params["conv2"][0].data, golden["snapshot__conv2__0"])
