"""Our ``train``, ``test`` and ``time`` logs against official Caffe's
(tests/fixtures/golden/logs, see its _index.json): the same commands, in the same
folder layout, give the same sequence of Caffe-level lines (caffe.cpp,
solver.cpp, sgd_solver.cpp), each in Caffe's format. Net construction lines
(net.cpp) differ and are not compared.

Each line kind is a template: ``{x}`` is compared as written (iterations,
names, paths, learning rates), ``{g}`` is a number that must be printed as
Caffe's iostream prints it (``%g``, 6 significant digits) but whose value may
differ (timings; losses, which are chaotic). Values that are deterministic
(the first test, the scoring of fixed weights) are compared as numbers too.

The net file is Caffe's, unchanged: its Data layers read the golden LMDBs,
linked into the run folder.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest
from support import paths


ROOT = paths.ROOT
LOGS = os.path.join(paths.GOLDEN, "logs")
SOLVERS = os.path.join(paths.GOLDEN, "solvers")

GLOG = re.compile(r"^[IWEF](?:\d{8}|\d{4}) \d\d:\d\d:\d\d\.\d{6} +\d+ ([\w.]+):\d+\] (.*)$")

TRAIN = [
    "Use CPU.",
    "Initializing solver from parameters: ",
    "Creating training net from net file: {x}",
    "Finetuning from {x}",
    "Creating test net (#{x}) specified by net file: {x}",
    "Solver scaffolding done.",
    "Starting Optimization",
    "Solving {x}",
    "Learning Rate Policy: {x}",
    "Iteration {x}, Testing net (#{x})",
    "    Test net output #{x}: {x} = {g} (* {x} = {g} loss)",
    "    Test net output #{x}: {x} = {g}",
    "Iteration {x} ({g} iter/s, {g}s/{x} iters), loss = {g}",
    "    Train net output #{x}: {x} = {g} (* {x} = {g} loss)",
    "    Train net output #{x}: {x} = {g}",
    "Iteration {x}, lr = {x}",
    "Snapshotting to binary proto file {x}",
    "Snapshotting solver state to binary proto file {x}",
    "Iteration {x}, loss = {g}",
    "Optimization Done.",
]
TEST = [
    "Use CPU.",
    "Running for {x} iterations.",
    "Batch {x}, {x} = {g}",
    "Loss: {g}",
    "{x} = {g} (* {x} = {g} loss)",
    "{x} = {g}",
]
TIME = [
    "Use CPU.",
    "Performing Forward",
    "Initial loss: {g}",
    "Performing Backward",
    "*** Benchmark begins ***",
    "Testing for {x} iterations.",
    "Iteration: {x} forward-backward time: {i} ms.",
    "Average time per layer: ",
    "{x}\tforward: {g} ms.",
    "{x}\tbackward: {g} ms.",
    "Average Forward pass: {g} ms.",
    "Average Backward pass: {g} ms.",
    "Average Forward-Backward: {g} ms.",
    "Total Time: {i} ms.",
    "*** Benchmark ends ***",
]
CAFFE_SOURCES = {"caffe.cpp", "solver.cpp", "sgd_solver.cpp"}

_FIELDS = {"{x}": r"(?P<x>\s*\S+)", "{g}": r"(?P<g>\S+)", "{i}": r"(?P<g>\d+)"}


def _compile(template):
    pieces = re.split(r"(\{[xgi]\})", template)
    pattern, n = "", 0
    for piece in pieces:
        if piece in _FIELDS:
            pattern += _FIELDS[piece].replace("P<", "P<%s" % "abcdefghij"[n], 1)
            n += 1
        else:
            pattern += re.escape(piece)
    return re.compile("^%s$" % pattern)


def classify(message, kinds):
    """(template, [x values], [g values]) of the first kind ``message`` is, or None."""
    for template in kinds:
        match = _compile(template).match(message)
        if match:
            groups = sorted(match.groupdict().items())
            xs = [v for k, v in groups if k[1] == "x"]
            gs = [v for k, v in groups if k[1] == "g"]
            return template, xs, gs
    return None


def is_g(value):
    """Printed as C++ iostream prints a float (what %g gives)."""
    try:
        return "%g" % float(value) == value
    except ValueError:
        return False


def lines_of(log_text, kinds, sources=None):
    """The classified glog lines of a log; with ``sources``, only lines from
    those source files, each of which must be of a known kind."""
    out = []
    for line in log_text.splitlines():
        match = GLOG.match(line)
        if not match:
            continue                     # a continuation of a multi-line message
        source, message = match.groups()
        if sources is not None and source not in sources:
            continue
        kind = classify(message, kinds)
        if kind is None:
            assert sources is None, "unknown Caffe line kind: %r" % message
            continue
        assert all(is_g(g) for g in kind[2]), "not a %%g number in %r" % message
        out.append(kind)
    return out


def compare(ours, caffe):
    """The same kinds, in the same order, with the same {x} fields."""
    assert [(t, xs) for t, xs, _ in ours] == [(t, xs) for t, xs, _ in caffe]


def dump_after(log_text, message):
    """The continuation lines of the multi-line message starting ``message``."""
    lines = log_text.splitlines()
    start = next(i for i, l in enumerate(lines) if GLOG.match(l) and l.endswith("] " + message))
    end = next(i for i in range(start + 1, len(lines)) if GLOG.match(lines[i]))
    return lines[start + 1:end]


def golden(name):
    with open(os.path.join(LOGS, name)) as f:
        return f.read()


def run_cli(cwd, *args):
    out = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *args], cwd=str(cwd),
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                             [ROOT, os.path.join(ROOT, "tests")])))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout == ""
    return out.stderr


@pytest.fixture
def layout(tmp_path):
    """Caffe's run folders: solvers/ (the net, fed from the golden LMDBs, and
    the initial weights) and logs/ (the solver file, cli_snapshot/)."""
    solvers, logs = tmp_path / "solvers", tmp_path / "logs"
    solvers.mkdir()
    (logs / "cli_snapshot").mkdir(parents=True)
    for name in ("lenet_train_test.prototxt", "lenet_init.caffemodel"):
        shutil.copy(os.path.join(SOLVERS, name), str(solvers))
    for name in ("digits_train_lmdb", "digits_test_lmdb"):
        os.symlink(os.path.join(SOLVERS, name), str(solvers / name))
    shutil.copy(os.path.join(LOGS, "caffe_train_lenet_sgd.solver.prototxt"), str(logs))
    return tmp_path


@pytest.mark.slow
def test_train_log_matches_caffes(layout):
    log = run_cli(layout / "solvers", "train", "-solver",
                  "../logs/caffe_train_lenet_sgd.solver.prototxt",
                  "-weights", "lenet_init.caffemodel")
    caffe = lines_of(golden("caffe_train_lenet_sgd.log"), TRAIN, CAFFE_SOURCES)
    ours = lines_of(log, TRAIN)
    compare(ours, caffe)       # every lr, iteration, output name, snapshot path
    header = "Initializing solver from parameters: "
    assert dump_after(log, header) == dump_after(golden("caffe_train_lenet_sgd.log"), header)
    assert (layout / "logs" / "cli_snapshot" / "lenet_iter_40.solverstate").exists()
    # The first test and the first losses come from the same weights and data.
    first_test = [gs for t, _, gs in caffe if "Test net output" in t][:2]
    assert [gs for t, _, gs in ours if "Test net output" in t][:2] == first_test
    losses = [(float(gs[-1]), float(theirs[-1]))
              for (t, _, gs), (_, _, theirs) in zip(ours, caffe) if t.startswith("Iteration {x} (")]
    assert len(losses) == 40
    for mine, theirs in losses[:3]:
        assert mine == pytest.approx(theirs, rel=5e-3)


def test_test_log_matches_caffes(layout):
    log = run_cli(layout / "solvers", "test", "-model", "lenet_train_test.prototxt",
                  "-weights", os.path.join(SOLVERS, "sgd_inv_final.caffemodel"),
                  "-iterations", "2")
    caffe = lines_of(golden("caffe_test_lenet.log"), TEST, {"caffe.cpp"})
    ours = lines_of(log, TEST)
    compare(ours, caffe)
    # The same weights on the same batches: the same scores.
    for (_, _, mine), (_, _, theirs) in zip(ours, caffe):
        assert [float(v) for v in mine] == pytest.approx([float(v) for v in theirs], rel=2e-5)


def test_time_log_matches_caffes(tmp_path):
    shutil.copy(os.path.join(LOGS, "lenet_deploy.prototxt"), str(tmp_path))
    log = run_cli(tmp_path, "time", "-model", "lenet_deploy.prototxt", "-iterations", "10")
    caffe = lines_of(golden("caffe_time_lenet.log"), TIME, {"caffe.cpp"})
    ours = lines_of(log, TIME)
    compare(ours, caffe)       # layer names padded to 10 columns, as Caffe's setw(10)
    assert "      data\tforward: " in log
