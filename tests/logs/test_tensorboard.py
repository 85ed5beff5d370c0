"""TensorBoard scalars from training, read back with TensorBoard's own reader:
the pycaffe callback and ``lowbit-caffe train --tensorboard DIR``."""
import os
import subprocess
import sys

import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit import cli
from pycaffe_lowbit.logs.tensorboard import TensorBoard
from support import paths
from support.helpers import TINY_NET_WITH_ACCURACY

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")

SOLVER = """
net: "net.prototxt"
base_lr: 0.1
lr_policy: "step"
gamma: 0.5
stepsize: 4
max_iter: 10
average_loss: 3
display: 5
test_iter: 2
test_interval: 5
snapshot_after_train: false
random_seed: 1
"""


def read_scalars(logdir):
    """{tag: [(step, value), ...]} from the event files in ``logdir``."""
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def write_files(folder):
    (folder / "net.prototxt").write_text(TINY_NET_WITH_ACCURACY)
    (folder / "solver.prototxt").write_text(SOLVER)


class Recorder:
    """What the solver shows at each iteration and test, to compare the events with."""

    def __init__(self, solver):
        self.solver, self.losses, self.tests = solver, [], []

    def on_start(self):
        pass

    def on_gradients_ready(self):
        self.losses.append((self.solver.iter, self.solver.smoothed_loss))

    def on_test(self, test_net_id, scores):
        self.tests.append((self.solver.iter, test_net_id, dict(scores)))


def test_callback_writes_loss_rate_and_test_outputs(tmp_path, monkeypatch):
    write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    solver = caffe.get_solver("solver.prototxt")
    recorder = Recorder(solver)
    solver.add_callback(recorder)
    with TensorBoard(solver, tmp_path / "runs") as board:
        solver.add_callback(board)
        solver.solve()
    scalars = read_scalars(tmp_path / "runs")
    assert set(scalars) == {"train/loss", "train/lr", "test/accuracy", "test/loss"}
    assert [s for s, _ in scalars["train/loss"]] == list(range(10))
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(
        [v for _, v in recorder.losses], rel=1e-6)
    # step policy: 0.1 * 0.5 ^ (iter // 4)
    assert scalars["train/lr"] == [(i, pytest.approx(0.1 * 0.5 ** (i // 4))) for i in range(10)]
    # Tests at 0 (test_initialization), 5 and after training at 10.
    steps = [s for s, _, _ in recorder.tests]
    assert [s for s, _ in scalars["test/accuracy"]] == steps == [0, 5, 10]
    for (step, value), (_, _, scores) in zip(scalars["test/accuracy"], recorder.tests):
        assert value == pytest.approx(scores["accuracy"])
    for (step, value), (_, _, scores) in zip(scalars["test/loss"], recorder.tests):
        assert value == pytest.approx(scores["loss"])


def test_several_test_nets_and_vector_outputs_get_their_own_tags():
    class Writer:
        def __init__(self):
            self.events = []

        def add_scalar(self, tag, value, step):
            self.events.append((tag, value, step))

    class Solver:
        iter = 7

    writer = Writer()
    board = TensorBoard(Solver(), writer=writer)
    board.on_test(0, {"accuracy": 0.5})
    board.on_test(1, {"probs": [0.25, 0.75]})
    assert writer.events == [("test/accuracy", 0.5, 7), ("test1/probs/0", 0.25, 7),
                             ("test1/probs/1", 0.75, 7)]
    with pytest.raises(ValueError, match="logdir"):
        TensorBoard(Solver())


def test_cli_train_tensorboard(tmp_path):
    write_files(tmp_path)
    out = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "train",
                          "--solver=solver.prototxt", "--tensorboard", "tb"],
                         capture_output=True, text=True, cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=paths.ROOT))
    assert out.returncode == 0, out.stderr[-3000:]
    scalars = read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["train/loss"]] == list(range(10))
    # The logged test lines carry the same numbers ("Test net output #0: accuracy = v").
    logged = [float(line.rsplit("= ", 1)[1]) for line in out.stderr.splitlines()
              if "Test net output #0: accuracy = " in line]
    assert [v for _, v in scalars["test/accuracy"]] == pytest.approx(logged, rel=1e-5)
    display = [line for line in out.stderr.splitlines() if "Iteration 5 (" in line][0]
    assert dict(scalars["train/loss"])[5] == pytest.approx(
        float(display.rsplit("loss = ", 1)[1]), rel=1e-5)


def test_cli_without_tensorboardx_is_one_error_line(tmp_path, monkeypatch, capfd):
    write_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)       # import fails
    assert cli.main(["train", "--solver=solver.prototxt", "--tensorboard", "tb"]) == 1
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("E")]
    assert len(errors) == 1 and "pip install 'pycaffe_lowbit[tensorboard]'" in errors[0]
    assert not (tmp_path / "tb").exists()
