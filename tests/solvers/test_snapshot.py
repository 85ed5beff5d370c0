"""Solver snapshots (.caffemodel + .solverstate, or HDF5) and restore, as Caffe,
driven through ``solvers.snapshot`` with a stand-in solver (support/snapshots.py):
the files, the state, the log lines, the errors."""
import logging
import os

import h5py
import numpy as np
import pytest

from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.formats import caffemodel
from pycaffe_lowbit.formats.blobproto import array_from_proto
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import snapshot as snap
from support.snapshots import stand_in, weights, assert_same_state


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
