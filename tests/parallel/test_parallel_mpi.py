"""Data-parallel training across processes: ``mpirun -np 2`` on this machine's
CPUs. Each test has a timeout, so a hang fails instead of blocking the suite.

* 2 ranks x batch b give the params of 1 process x batch 2b (float tolerance)
  after 10 iterations (the 256-record database wraps), with iter_size 1 and 2,
  and the SQ roulette masks are the same on both ranks and in the 1-process run;
* ``mpirun -np 2 lowbit-caffe train`` trains data-parallel, rank 0 writes the
  snapshots, and a resume from one ends where the uninterrupted run ends;
* a rank that raises, or is killed, ends the whole run with a non-zero exit.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pycaffe_lowbit.formats.caffemodel import read_net_binary
from pycaffe_lowbit.parallel import world

from support import mpi_worker
from support import paths

MPIRUN = shutil.which("mpirun")
try:
    import mpi4py  # noqa: F401
    HAVE_MPI4PY = True
except ImportError:
    HAVE_MPI4PY = False

pytestmark = [pytest.mark.skipif(MPIRUN is None, reason="mpirun not installed "
                                 "(apt-get install openmpi-bin)"),
              pytest.mark.skipif(not HAVE_MPI4PY, reason="mpi4py not installed "
                                 "(pip install 'pycaffe_lowbit[mpi]')")]

ROOT = paths.ROOT
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _one_solver():
    yield
    world.set_solver_count(1)
    world.set_solver_rank(0)


def mpirun(n, args, cwd=None):
    cmd = [MPIRUN, "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd + ["-np", str(n), sys.executable] + args, cwd=cwd or ROOT,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)


def _write_config(tmp_path, **cfg):
    import json
    cfg.setdefault("out", str(tmp_path))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return str(path)


@pytest.mark.parametrize("iter_size", [1, 2])
def test_two_ranks_equal_one_rank_with_double_batch(tmp_path, iter_size):
    cfg = _write_config(tmp_path, batch=8, iter_size=iter_size, iters=10)
    out = mpirun(2, [os.path.join(ROOT, "tests", "support", "mpi_worker.py"), cfg])
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = [np.load(tmp_path / ("rank%d.npz" % r)) for r in (0, 1)]
    _, single, masks = mpi_worker.train(dict(out=str(tmp_path), batch=16,
                                             iter_size=iter_size, iters=10))
    assert np.array_equal(ranks[0]["masks"], ranks[1]["masks"])
    assert np.array_equal(ranks[0]["masks"], masks) and masks.shape == (10, 10)
    for i, expected in enumerate(single):
        assert np.array_equal(ranks[0]["p%d" % i], ranks[1]["p%d" % i])
        np.testing.assert_allclose(ranks[0]["p%d" % i], expected, rtol=1e-5, atol=1e-6)
    # Only rank 0 logs INFO: one "Optimization Done." line, one per test pass.
    assert out.stderr.count("Optimization Done.") == 1
    assert out.stderr.count("Testing net (#0)") == 4        # iterations 0, 3, 6, 9


@pytest.mark.parametrize("how", ["raise", "kill"])
def test_a_failing_rank_stops_every_rank(tmp_path, how):
    cfg = _write_config(tmp_path, batch=8, iter_size=1, iters=50, fail=how)
    out = mpirun(2, [os.path.join(ROOT, "tests", "support", "mpi_worker.py"), cfg])
    assert out.returncode != 0
    assert not (tmp_path / "rank0.npz").exists()
    if how == "raise":
        assert ("Solver rank 1 of 2 failed, stopping all ranks: RuntimeError: rank 1 "
                "fails on purpose") in out.stderr


def _write_solver(folder, batch, prefix):
    net = mpi_worker.NET % dict(train=mpi_worker.DB % "train",
                                test=mpi_worker.DB % "test", batch=batch)
    (folder / ("net%d.prototxt" % batch)).write_text(net)
    solver = folder / ("solver%d.prototxt" % batch)
    solver.write_text('net: "net%d.prototxt"\nbase_lr: 0.05\nmomentum: 0.9\n'
                      'weight_decay: 0.0005\nlr_policy: "fixed"\nmax_iter: 10\n'
                      'display: 5\ntest_iter: 2\ntest_interval: 5\nsnapshot: 5\n'
                      'random_seed: 7\nsnapshot_prefix: "%s"\n' % (batch, prefix))
    return solver.name


def _weights(path):
    return [np.array(b.data, np.float32) for layer in read_net_binary(str(path)).layer
            for b in layer.blobs]


def test_cli_trains_data_parallel_and_resumes(tmp_path, monkeypatch):
    from pycaffe_lowbit import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "resumed").mkdir()
    one = _write_solver(tmp_path, 16, "one/snap")
    assert cli.main(["train", "--solver", one]) == 0
    two = _write_solver(tmp_path, 8, "two/snap")
    out = mpirun(2, ["-m", "pycaffe_lowbit.cli", "train", "--solver", two], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one")) == [
        "snap_iter_10.caffemodel", "snap_iter_10.solverstate",
        "snap_iter_5.caffemodel", "snap_iter_5.solverstate"]
    for a, b in zip(_weights(tmp_path / "two" / "snap_iter_10.caffemodel"),
                    _weights(tmp_path / "one" / "snap_iter_10.caffemodel")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # A resume reads the data from the start again (as Caffe): compare with the
    # 1-process resume.
    (tmp_path / "resumed1").mkdir()
    assert cli.main(["train", "--solver", one, "--snapshot", "one/snap_iter_5.solverstate",
                     "--set", "snapshot_prefix=resumed1/snap"]) == 0
    out = mpirun(2, ["-m", "pycaffe_lowbit.cli", "train", "--solver", two,
                     "--snapshot", "two/snap_iter_5.solverstate",
                     "--set", "snapshot_prefix=resumed/snap"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Resuming from two/snap_iter_5.solverstate" in out.stderr
    for a, b in zip(_weights(tmp_path / "resumed" / "snap_iter_10.caffemodel"),
                    _weights(tmp_path / "resumed1" / "snap_iter_10.caffemodel")):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
