"""logparse: Caffe training logs (glog) into train/test rows; `lowbit-caffe parse_log`."""
import csv
import math
import os
import subprocess
import sys

import pytest

from pycaffe_lowbit import cli
from pycaffe_lowbit.logs.parse import LogParseError, parse_log, save_csv_files
from support import paths

ROOT = paths.ROOT
SOLVERS = os.path.join(paths.GOLDEN, "solvers")
CLI_LOG = os.path.join(paths.GOLDEN, "logs", "caffe_train_lenet_sgd.log")

# Old glog stamps (no year), a year wrap, two test nets, a resumed run, iter_size-style
# lines without train outputs, and noise lines in between.
SYNTHETIC = """\
WARNING: Logging before InitGoogleLogging() is written to STDERR
I1231 23:59:58.000000 100 solver.cpp:289] Solving Toy
I1231 23:59:58.500000 100 solver.cpp:347] Iteration 0, Testing net (#0)
I1231 23:59:58.600000 100 solver.cpp:414]     Test net output #0: acc = 0.1
I1231 23:59:58.700000 100 solver.cpp:347] Iteration 0, Testing net (#1)
I1231 23:59:58.800000 100 solver.cpp:414]     Test net output #0: acc = 0.2
I1231 23:59:59.000000 100 solver.cpp:239] Iteration 0 (0 iter/s, 0.1s/1 iters), loss = 2.5
I1231 23:59:59.000001 100 solver.cpp:258]     Train net output #0: loss_a = 2 (* 1 = 2 loss)
I1231 23:59:59.000002 100 solver.cpp:258]     Train net output #1: loss_b = 1 (* 0.5 = 0.5 loss)
I1231 23:59:59.000003 100 sgd_solver.cpp:112] Iteration 0, lr = 0.1
  some continuation line: Iteration 99, lr = 7
I0101 00:00:01.000000 100 data_layer.cpp:73] Restarting data prefetching from start.
I0101 00:00:02.000000 100 solver.cpp:239] Iteration 10 (5 iter/s, 2s/10 iters), loss = 1.5e-01
I0101 00:00:02.000001 100 sgd_solver.cpp:112] Iteration 10, lr = 1e-2
I0101 00:00:03.000000 100 solver.cpp:327] Iteration 20, loss = 0.125
I0101 00:00:03.100000 100 solver.cpp:347] Iteration 20, Testing net (#0)
I0101 00:00:03.200000 100 solver.cpp:414]     Test net output #0: acc = 0.9
I0101 00:00:03.300000 100 solver.cpp:414]     Test net output #1: loss = 0.3 (* 1 = 0.3 loss)
"""


def _write(tmp_path, text, name="toy.log"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_caffe_solver_log_rows():
    train, test = parse_log(os.path.join(SOLVERS, "sgd_inv.log"))
    assert [r["NumIters"] for r in train[:3]] == [0, 1, 2]
    first = train[0]
    assert list(first)[:4] == ["NumIters", "Seconds", "LearningRate", "SmoothedLoss"]
    assert first["LearningRate"] == 0.01 and first["SmoothedLoss"] == 2.30833
    assert first["loss"] == 2.30833
    # Each row carries the rate Caffe printed for its own iteration.
    assert train[1]["LearningRate"] == 0.00999925
    assert all(r["Seconds"] >= 0 for r in train)
    assert [r["Seconds"] for r in train] == sorted(r["Seconds"] for r in train)
    assert [r["NumIters"] for r in test] == [0, 20]
    assert test[0]["accuracy"] == 0.101562 and test[0]["loss"] == 2.33938
    assert test[1]["LearningRate"] == train[20]["LearningRate"]
    assert "TestNet" not in test[0]


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(SOLVERS) if n.endswith(".log")))
def test_every_golden_solver_log_parses(name):
    train, test = parse_log(os.path.join(SOLVERS, name))
    assert train and test
    assert all(not math.isnan(r["SmoothedLoss"]) for r in train)
    assert all("accuracy" in r for r in test)


def test_cli_train_log_with_final_lines():
    if not os.path.exists(CLI_LOG):
        pytest.skip("tests/fixtures/golden/logs not present")
    train, test = parse_log(CLI_LOG)
    assert [r["NumIters"] for r in train] == list(range(41))
    last = train[-1]   # "Iteration 40, loss = 0.108789" after the last step
    assert last["SmoothedLoss"] == 0.108789 and math.isnan(last["LearningRate"])
    assert "loss" not in last
    assert [(r["NumIters"], r["accuracy"]) for r in test] == [
        (0, 0.101562), (20, 0.734375), (40, 0.828125)]


def test_synthetic_log(tmp_path):
    train, test = parse_log(_write(tmp_path, SYNTHETIC))
    assert [r["NumIters"] for r in train] == [0, 10, 20]
    t0, t10, t20 = train
    assert t0["Seconds"] == pytest.approx(1.0)
    assert t10["Seconds"] == pytest.approx(4.0)          # across the new year
    assert (t0["loss_a"], t0["loss_b"], t0["SmoothedLoss"]) == (2.0, 1.0, 2.5)
    assert t10["SmoothedLoss"] == 0.15 and t10["LearningRate"] == 0.01
    assert "loss_a" not in t10                             # no outputs that iteration
    assert t20["SmoothedLoss"] == 0.125 and math.isnan(t20["LearningRate"])
    # Two test nets: one row per (iteration, net), with a TestNet column.
    assert [(r["NumIters"], r["TestNet"], r["acc"]) for r in test] == [
        (0, 0, 0.1), (0, 1, 0.2), (20, 0, 0.9)]
    assert test[0]["Seconds"] == pytest.approx(0.5)
    assert test[2]["loss"] == 0.3
    assert test[0]["LearningRate"] == 0.1 and test[2]["LearningRate"] == 0.01


def test_lines_as_input_and_year_stamps():
    lines = ["I20261123 09:00:00.000000 1 solver.cpp:289] Solving X",
             "I20261123 09:00:01.250000 1 solver.cpp:239] Iteration 5 (1 iter/s), loss = nan",
             "I20261123 09:00:01.250000 1 solver.cpp:258]     Train net output #0: l = -inf",
             "E20261123 09:00:02.000000 1 solver.cpp:258] Iteration 6, lr = 1e-05"]
    train, test = parse_log(lines)
    assert test == []
    assert train[0]["Seconds"] == 1.25 and math.isnan(train[0]["SmoothedLoss"])
    assert train[0]["l"] == -math.inf
    assert train[1]["NumIters"] == 6 and train[1]["LearningRate"] == 1e-5


def test_unreadable_log_is_a_clear_error(tmp_path):
    with pytest.raises(LogParseError, match="cannot read log .*missing.log"):
        parse_log(str(tmp_path / "missing.log"))


def test_log_without_iterations(tmp_path):
    assert parse_log(_write(tmp_path, "hello\nI1123 10:00:00.0 1 x.cpp:1] nothing\n")) == ([], [])


def test_csv_files(tmp_path):
    log = _write(tmp_path, SYNTHETIC)
    train, test = parse_log(log)
    out = tmp_path / "out"
    out.mkdir()
    written = save_csv_files(log, str(out), train, test)
    assert written == [str(out / "toy.log.train"), str(out / "toy.log.test")]
    with open(out / "toy.log.train") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["NumIters", "Seconds", "LearningRate", "SmoothedLoss",
                             "loss_a", "loss_b"]
    assert rows[0]["NumIters"] == "0" and float(rows[0]["loss_b"]) == 1.0
    assert rows[2]["LearningRate"] == "" and rows[2]["loss_a"] == ""
    with open(out / "toy.log.test") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["NumIters", "Seconds", "LearningRate", "TestNet", "acc", "loss"]
    # parse_log.py writes no file for an empty row list.
    assert save_csv_files(log, str(out), train, []) == [str(out / "toy.log.train")]


def test_cli_parse_log(tmp_path):
    log = os.path.join(SOLVERS, "adam.log")
    rc = cli.main(["parse_log", log, str(tmp_path), "-delimiter", ";"])
    assert rc == 0
    with open(tmp_path / "adam.log.train") as f:
        header = f.readline().strip()
    assert header == "NumIters;Seconds;LearningRate;SmoothedLoss;loss"
    assert (tmp_path / "adam.log.test").exists()


def test_cli_parse_log_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "parse_log",
                          str(tmp_path / "nope.log"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "nope.log" in out.stderr and "Traceback" not in out.stderr
    assert cli.main(["parse_log", os.path.join(SOLVERS, "adam.log"),
                     str(tmp_path / "no_such_dir")]) == 1
