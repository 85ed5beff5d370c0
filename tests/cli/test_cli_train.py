"""lowbit-caffe train, run as a user runs it: Caffe's log lines, snapshots,
resume, fine-tuning, flag errors, --set, and the signal-to-action mapping."""
import os
import subprocess
import sys

from support.helpers import TINY_NET_WITH_ACCURACY
from support import paths

ROOT = paths.ROOT

NET = TINY_NET_WITH_ACCURACY

SOLVER = """
net: "net.prototxt"
base_lr: 0.1
lr_policy: "step"
gamma: 0.5
stepsize: 10
momentum: 0.9
max_iter: 30
display: 10
test_iter: 2
test_interval: 15
snapshot: 20
snapshot_prefix: "snap/tiny"
random_seed: 1
"""


def run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *args],
                          capture_output=True, text=True, cwd=str(cwd),
                          env=dict(os.environ, PYTHONPATH=ROOT))


def setup(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    (tmp_path / "snap").mkdir()


def test_train_logs_like_caffe_and_snapshots(tmp_path):
    setup(tmp_path)
    out = run(tmp_path, "train", "--solver=solver.prototxt")
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stderr
    for line in ("Starting Optimization", "Solving tiny", "Learning Rate Policy: step",
                 "Iteration 0, Testing net (#0)", "    Test net output #0: accuracy = ",
                 "    Train net output #0: loss = ", "Iteration 10, lr = 0.05",
                 "Iteration 20, lr = 0.025",
                 "Snapshotting to binary proto file snap/tiny_iter_20.caffemodel",
                 "Snapshotting solver state to binary proto file snap/tiny_iter_20.solverstate",
                 "Optimization Done."):
        assert line in log, line
    for it in (20, 30):
        assert (tmp_path / "snap" / ("tiny_iter_%d.caffemodel" % it)).exists()
        assert (tmp_path / "snap" / ("tiny_iter_%d.solverstate" % it)).exists()


def test_resume_and_finetune(tmp_path):
    setup(tmp_path)
    assert run(tmp_path, "train", "-solver", "solver.prototxt").returncode == 0
    out = run(tmp_path, "train", "-solver", "solver.prototxt",
              "-snapshot", "snap/tiny_iter_20.solverstate")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Resuming from snap/tiny_iter_20.solverstate" in out.stderr
    assert "Iteration 0, Testing" not in out.stderr and "Iteration 20, lr = 0.025" in out.stderr
    out = run(tmp_path, "train", "-solver", "solver.prototxt",
              "-weights", "snap/tiny_iter_30.caffemodel", "--set", "max_iter=5",
              "--set", "snapshot_prefix=snap/ft")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "snap" / "ft_iter_5.caffemodel").exists()


def test_flag_errors_are_clear(tmp_path):
    setup(tmp_path)
    both = run(tmp_path, "train", "-solver", "solver.prototxt", "-snapshot", "a", "-weights", "b")
    assert both.returncode != 0 and "not both" in both.stderr + both.stdout
    missing = run(tmp_path, "train", "-solver", "nope.prototxt")
    assert missing.returncode != 0 and "nope.prototxt" in missing.stderr
    typo = run(tmp_path, "train", "--solvr", "solver.prototxt")
    assert typo.returncode != 0 and "--solvr" in typo.stderr
    for out in (both, missing, typo):
        assert "Traceback" not in out.stderr
    bad_set = run(tmp_path, "train", "-solver", "solver.prototxt", "--set", "base_lrr=1")
    assert bad_set.returncode != 0 and "base_lr" in bad_set.stderr


def test_signal_actions_map_like_caffe():
    import signal
    from pycaffe_lowbit.cli.train import SignalActions
    actions = SignalActions("stop", "snapshot")
    assert actions() == "none"
    actions.pending.append(signal.SIGHUP)
    assert actions() == "snapshot" and actions() == "none"
    actions.pending.append(signal.SIGINT)
    assert actions() == "stop"
    none = SignalActions("none", "none")
    none.pending.append(signal.SIGINT)
    assert none() == "none"
    try:
        SignalActions("halt")
    except ValueError as exc:
        assert "sigint_effect" in str(exc)
    else:
        raise AssertionError("bad effect accepted")
