"""``lowbit-caffe train`` meeting faults: a full disk during a snapshot (an
injected ENOSPC, and a real tiny tmpfs where this machine allows a mount), a
loss that goes NaN (--nan_effect), a corrupt or truncated file on --snapshot
or --weights, and a blob too large for memory. Each ends with one error line
(two for the disk: the failure, then the last good snapshot) and exit code 1."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.cli.main import main
from support.faults import enospc_when_writing, tiny_filesystem
from support.helpers import TINY_NET
from support.tool_cases import assert_one_line_error, run_cli

SOLVER = """net: "net.prototxt"
base_lr: 0.1
lr_policy: "fixed"
max_iter: 30
snapshot: 10
snapshot_prefix: "%s"
random_seed: 1
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    (tmp_path / "net.prototxt").write_text(TINY_NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER % "snap/tiny")
    (tmp_path / "snap").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def train(capsys, *flags):
    code = main(["train", "-solver", "solver.prototxt", *flags])
    return code, capsys.readouterr().err.splitlines()


def errors(lines):
    return [line.split("] ", 1)[1] for line in lines if line.startswith("E")]


# -- a full disk --------------------------------------------------------------------

def test_enospc_during_a_snapshot_names_the_file_and_the_last_good_one(workdir, capsys,
                                                                      monkeypatch):
    with enospc_when_writing(monkeypatch, "tiny_iter_20.solverstate"):
        code, lines = train(capsys)
    assert code == 1 and not any("Traceback" in line for line in lines)
    assert errors(lines) == [
        "cannot write snapshot file snap/tiny_iter_20.solverstate: No space left on device "
        "(errno 28); nothing was left under that name",
        "Last good snapshot: snap/tiny_iter_10.solverstate (resume with --snapshot "
        "snap/tiny_iter_10.solverstate)"]
    assert sorted(os.listdir(workdir / "snap")) == ["tiny_iter_10.caffemodel",
                                                   "tiny_iter_10.solverstate"]
    code, lines = train(capsys, "--snapshot", "snap/tiny_iter_10.solverstate")
    assert code == 0                                          # it resumes from there
    assert sorted(os.listdir(workdir / "snap")) == [
        "tiny_iter_%d.%s" % (k, ext) for k in (10, 20, 30) for ext in ("caffemodel",
                                                                      "solverstate")]


def test_full_tiny_filesystem_stops_training(tmp_path):
    """A 12 KiB tmpfs holds three 4 KiB pages: the snapshot at 10 (two files),
    then the model at 20; its state finds the disk full."""
    (tmp_path / "net.prototxt").write_text(TINY_NET)
    with tiny_filesystem(tmp_path / "disk", 12):
        (tmp_path / "solver.prototxt").write_text(SOLVER % "disk/tiny")
        out = run_cli(tmp_path, "train", "-solver", "solver.prototxt")
        assert out.returncode == 1, out.stderr
        assert "Traceback" not in out.stderr
        assert errors(out.stderr.splitlines()) == [
            "cannot write snapshot file disk/tiny_iter_20.solverstate: No space left on "
            "device (errno 28); nothing was left under that name",
            "Last good snapshot: disk/tiny_iter_10.solverstate (resume with --snapshot "
            "disk/tiny_iter_10.solverstate)"]
        assert sorted(os.listdir(tmp_path / "disk")) == ["tiny_iter_10.caffemodel",
                                                        "tiny_iter_10.solverstate"]
        os.remove(tmp_path / "disk" / "tiny_iter_10.caffemodel")   # room to resume
        out = run_cli(tmp_path, "train", "-solver", "solver.prototxt", "--snapshot",
                      "disk/tiny_iter_10.solverstate", "--set", "snapshot=0",
                      "--set", "snapshot_after_train=false", "--weights=")
        assert "learned net it names" in out.stderr     # the model is gone: said so


# -- divergence ---------------------------------------------------------------------

DIVERGING = """
layer { name: "data" type: "DummyData" top: "x" top: "t"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
                           data_filler { type: "gaussian" std: 10 }
                           data_filler { type: "gaussian" std: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "t" top: "loss" }
"""


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_divergence_stops_with_one_line(workdir, capsys):
    """base_lr 1: the weights grow ~100x an iteration, the loss overflows to inf."""
    (workdir / "net.prototxt").write_text(DIVERGING)
    (workdir / "solver.prototxt").write_text(SOLVER.replace("0.1", "1") % "snap/d")
    code, lines = train(capsys, "--set", "snapshot=2", "--set", "display=1")
    [line] = errors(lines)
    assert code == 1
    losses = [float(l.rsplit("= ", 1)[1]) for l in lines if "] Iteration " in l
              and ", loss = " in l]
    first_bad = next(i for i, v in enumerate(losses) if not np.isfinite(v))
    assert first_bad > 2
    last = max(k for k in range(0, first_bad + 1, 2))
    assert line.startswith("Iteration %d: loss is inf; layer 'loss' (EuclideanLoss): output "
                           "'loss' went non-finite; stopped (--nan_effect=stop); last "
                           "snapshot: snap/d_iter_%d.solverstate" % (first_bad, last)), line
    assert sorted(os.listdir(workdir / "snap")) == sorted(
        "d_iter_%d.%s" % (k, ext) for k in range(2, last + 1, 2)
        for ext in ("caffemodel", "solverstate"))
    # --nan_effect=none: Caffe's behaviour, train on to max_iter
    code, lines = train(capsys, "--nan_effect=none", "--set", "snapshot=0",
                        "--set", "snapshot_after_train=false")
    assert code == 0 and errors(lines) == [] and lines[-1].endswith("Optimization Done.")


# -- corrupt or truncated files -------------------------------------------------------

@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """A .caffemodel/.solverstate pair and an HDF5 pair, written by training."""
    folder = tmp_path_factory.mktemp("snaps")
    (folder / "net.prototxt").write_text(TINY_NET)
    for prefix, extra in (("b", ""), ("h", "snapshot_format: HDF5\n")):
        (folder / "solver.prototxt").write_text((SOLVER % prefix).replace("30", "10") + extra)
        assert run_cli(folder, "train", "-solver", "solver.prototxt").returncode == 0
    return folder


@pytest.mark.parametrize("flag, name, cut, fragments", [
    ("--snapshot", "b_iter_10.solverstate", 0.5,
     ["not a binary SolverState (truncated or corrupt: "]),
    ("--snapshot", "b_iter_10.solverstate", 0.0, ["empty solver state file"]),
    ("--snapshot", "h_iter_10.solverstate.h5", 0.5,
     ["not an HDF5 solver state: truncated HDF5 file: ", " bytes of the "]),
    ("--weights", "b_iter_10.caffemodel", 0.5,
     ["not a binary NetParameter (truncated or corrupt: "]),
    ("--weights", "b_iter_10.caffemodel", 0.0, ["holds no layers (an empty file)"]),
    ("--weights", "h_iter_10.caffemodel.h5", 0.5, ["truncated HDF5 file: "]),
    ("--weights", "h_iter_10.caffemodel.h5", 0.003, ["truncated HDF5 file: 16 bytes, its "
                                                     "header is incomplete"]),
    ("--weights", "h_iter_10.caffemodel.h5", -1, ["not an HDF5 file (7 bytes, no HDF5 "
                                                  "signature)"]),
])
def test_corrupt_files_are_one_line_before_training(snapshots, tmp_path, capsys, monkeypatch,
                                                   flag, name, cut, fragments):
    data = (snapshots / name).read_bytes()
    bad = tmp_path / ("bad_" + name)
    bad.write_bytes(data[:int(len(data) * cut)] if cut >= 0 else b"garbage")
    (tmp_path / "net.prototxt").write_text(TINY_NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER % "s")
    monkeypatch.chdir(tmp_path)
    code, lines = train(capsys, flag, bad.name)
    [line] = errors(lines)
    assert code == 1 and line.startswith(bad.name + ": ")
    for fragment in fragments:
        assert fragment in line, line
    assert not any("Starting Optimization" in l or "] Iteration" in l for l in lines)


# -- a blob too large for memory --------------------------------------------------------

def test_a_blob_too_large_is_one_line(tmp_path):
    """A typo'd num_output: 1e9 x 800 float32 weights are 3.2 TB."""
    (tmp_path / "net.prototxt").write_text(
        'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 64 dim: 800 } } }'
        'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" '
        '        inner_product_param { num_output: 1000000000 } }')
    out = run_cli(tmp_path, "time", "-model", "net.prototxt", "-iterations", "1")
    assert_one_line_error(out, "layer 'ip' (type InnerProduct): param 0 (weight): shape "
                               "1000000000 800 (800000000000 values) would need 3.2 TB "
                               "as float32: this machine has ")
