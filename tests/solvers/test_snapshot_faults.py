"""A snapshot that cannot be written (a full disk): the previous snapshot stays
intact and loadable, nothing is left under the final name (a model whose state
failed is removed too), and the error names the file and the OS's reason.

Twice: with an ENOSPC injected into each of the four files (BINARYPROTO and
HDF5, model and state), and on a real tiny filesystem (a tmpfs; skipped where
this machine does not allow a mount)."""
import errno
import os

import numpy as np
import pytest

from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import get_solver
from pycaffe_lowbit.solvers.snapshot import SnapshotWriteError
from support.faults import enospc_when_writing, fill, tiny_filesystem
from support.helpers import TINY_NET

BINARY, HDF5 = caffe_pb2.SolverParameter.BINARYPROTO, caffe_pb2.SolverParameter.HDF5
EXT = {BINARY: (".caffemodel", ".solverstate"), HDF5: (".caffemodel.h5", ".solverstate.h5")}


def make_solver(prefix, fmt=BINARY, **fields):
    p = caffe_pb2.SolverParameter(base_lr=0.1, lr_policy="fixed", max_iter=100, momentum=0.9,
                                  snapshot_prefix=str(prefix), snapshot_format=fmt,
                                  random_seed=1, **fields)
    p.net_param.CopyFrom(parse_net_text(TINY_NET))
    return get_solver(p)


def weights(solver):
    return [b.data.copy() for b in solver.net.learnable_params]


def files(folder):
    return sorted(f for f in os.listdir(folder) if f != "filler")


@pytest.mark.parametrize("fmt", [BINARY, HDF5], ids=["binaryproto", "hdf5"])
@pytest.mark.parametrize("which", [0, 1], ids=["model", "state"])
def test_injected_enospc_keeps_the_previous_snapshot(tmp_path, monkeypatch, fmt, which):
    model_ext, state_ext = EXT[fmt]
    solver = make_solver(tmp_path / "s", fmt)
    solver.step(3)
    solver.snapshot()
    good = weights(solver), [h.data.copy() for h in solver.history]
    before = {f: (tmp_path / f).read_bytes() for f in files(tmp_path)}
    assert sorted(before) == ["s_iter_3" + model_ext, "s_iter_3" + state_ext]
    solver.step(2)
    failing = "s_iter_5" + (model_ext, state_ext)[which]
    with enospc_when_writing(monkeypatch, failing) as hit:
        with pytest.raises(SnapshotWriteError) as info:
            solver.snapshot()
    assert len(hit) == 1
    exc = info.value
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    assert exc.filename == str(tmp_path / failing)
    assert str(exc) == ("cannot write snapshot file %s: No space left on device (errno 28); "
                        "nothing was left under that name" % (tmp_path / failing))
    assert exc.last_good == str(tmp_path / ("s_iter_3" + state_ext))
    # Nothing new on disk (no temporary file, no model without its state), the
    # previous pair byte for byte, and it restores.
    assert {f: (tmp_path / f).read_bytes() for f in files(tmp_path)} == before
    again = make_solver(tmp_path / "s", fmt)
    again.restore(exc.last_good)
    assert again.iter == 3
    for a, b in zip(weights(again), good[0]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(again.history, good[1]):
        np.testing.assert_array_equal(a.data, b)


def test_a_later_snapshot_succeeds_after_the_disk_is_freed(tmp_path, monkeypatch):
    solver = make_solver(tmp_path / "s")
    solver.step(1)
    with enospc_when_writing(monkeypatch, "s_iter_1.solverstate"):
        with pytest.raises(SnapshotWriteError) as info:
            solver.snapshot()
    assert info.value.last_good is None and files(tmp_path) == []
    solver.snapshot()
    assert files(tmp_path) == ["s_iter_1.caffemodel", "s_iter_1.solverstate"]
    assert solver.last_snapshot == str(tmp_path / "s_iter_1.solverstate")


@pytest.mark.parametrize("fmt", [BINARY, HDF5], ids=["binaryproto", "hdf5"])
def test_full_tiny_filesystem(tmp_path, fmt):
    model_ext, state_ext = EXT[fmt]
    with tiny_filesystem(tmp_path / "disk", 256) as disk:
        solver = make_solver(disk / "s", fmt, snapshot=2)
        solver.step(2)                              # snapshot at 2, on a roomy disk
        before = {f: (disk / f).read_bytes() for f in files(disk)}
        assert sorted(before) == ["s_iter_2" + model_ext, "s_iter_2" + state_ext]
        fill(disk, 0)                               # then the disk is full
        with pytest.raises(SnapshotWriteError) as info:
            solver.step(2)                          # snapshot at 4 fails
        exc = info.value
        assert exc.errno == errno.ENOSPC, str(exc)
        assert exc.filename == str(disk / ("s_iter_4" + model_ext))
        assert "No space left on device" in str(exc)
        assert exc.last_good == str(disk / ("s_iter_2" + state_ext))
        assert {f: (disk / f).read_bytes() for f in files(disk)} == before
        os.remove(disk / "filler")
        again = make_solver(disk / "s", fmt)
        again.restore(exc.last_good)
        assert again.iter == 2
