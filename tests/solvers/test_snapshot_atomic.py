"""Snapshots are written atomically: a crash (an exception, SIGKILL) while
writing leaves the previous snapshot intact and no partial file under its name."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from pycaffe_lowbit.formats import caffemodel
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import snapshot as snap
from support import paths
from support.snapshots import assert_same_state, stand_in


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
from support import snapshots as t
from pycaffe_lowbit.formats import caffemodel
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
                             str(flag), paths.TESTS])
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
