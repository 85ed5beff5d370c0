"""SIGINT and SIGHUP sent to a running ``lowbit-caffe train``, as Caffe handles
them: by default SIGINT stops (after the snapshot Caffe takes at the end of
training) and SIGHUP snapshots and carries on; ``--sigint_effect`` and
``--sighup_effect`` pick stop, snapshot or none. SIGTERM (ours, a scheduler's
preemption notice) snapshots and stops by default, and the job resumes from
that snapshot; ``--sigterm_effect`` picks it too.

Each signal is sent only once the training loop has logged an iteration (the
handlers are installed before the solver is built), so the tests do not race
with start-up.
"""
import os
import queue
import re
import signal
import subprocess
import sys
import threading

import pytest

from support.helpers import TINY_NET
from support import paths

ROOT = paths.ROOT

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

NET = TINY_NET

SOLVER = """
net: "net.prototxt"
base_lr: 0.01
lr_policy: "fixed"
max_iter: 100000000
display: 100
snapshot_prefix: "snap/tiny"
random_seed: 1
"""

ITERATION = re.compile(r"\] Iteration (\d+) \(")
STATE = re.compile(r"\] Snapshotting solver state to binary proto file snap/tiny_iter_(\d+)"
                   r"\.solverstate$")
TIMEOUT = 60


def _default_sigint():
    """In the child: SIGINT back to its default. A shell that starts the suite
    in the background hands its children SIGINT ignored, and Python keeps an
    inherited SIG_IGN, so ``time`` would never see the test's signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Training:
    """``lowbit-caffe train`` in the background; its log read line by line."""

    def __init__(self, cwd, *flags):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pycaffe_lowbit.cli", "train", "-solver", "solver.prototxt",
             *flags], cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=dict(os.environ, PYTHONPATH=ROOT), preexec_fn=_default_sigint)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern, at_least=0):
        """The first new line matching ``pattern`` whose group 1 (an iteration)
        is >= ``at_least``; fails when the log ends or stalls first."""
        while True:
            try:
                line = self._queue.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError("no line matching %s in %ds" % (pattern.pattern, TIMEOUT))
            if line is None:
                raise AssertionError("log ended before %s:\n%s"
                                     % (pattern.pattern, "\n".join(self.lines[-20:])))
            self.lines.append(line)
            match = pattern.search(line)
            if match and int(match.group(1)) >= at_least:
                return int(match.group(1))

    def send(self, signum):
        self.proc.send_signal(signum)

    def finish(self):
        """(exit code, every log line)."""
        try:
            code = self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        while True:
            line = self._queue.get(timeout=TIMEOUT)
            if line is None:
                return code, self.lines
            self.lines.append(line)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    (tmp_path / "snap").mkdir()
    return tmp_path


def messages(lines):
    return [line.split("] ", 1)[1] for line in lines if "] " in line]


def states(lines):
    """The iterations of the solver states the log says were written."""
    return [int(STATE.search(l).group(1)) for l in lines if STATE.search(l)]


def snapshot_lines(k):
    return ["Snapshotting to binary proto file snap/tiny_iter_%d.caffemodel" % k,
            "Snapshotting solver state to binary proto file snap/tiny_iter_%d.solverstate" % k]


def test_sigint_snapshots_and_stops_by_default(workdir):
    run = Training(workdir)
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGINT)
    code, lines = run.finish()
    assert code == 0, "\n".join(lines[-20:])
    [stopped] = states(lines)
    assert stopped > seen
    tail = messages(lines)[-4:]
    assert tail == snapshot_lines(stopped) + ["Optimization stopped early.",
                                              "Optimization Done."]
    assert sorted(os.listdir(workdir / "snap")) == [
        "tiny_iter_%d.caffemodel" % stopped, "tiny_iter_%d.solverstate" % stopped]
    assert not any("Traceback" in l for l in lines)


def test_sighup_snapshots_and_training_goes_on(workdir):
    run = Training(workdir, "--sighup_effect=snapshot")
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGHUP)
    first = run.wait_for(STATE)
    assert first > seen
    later = run.wait_for(ITERATION, at_least=first + 200)   # still training
    run.send(signal.SIGINT)
    code, lines = run.finish()
    assert code == 0, "\n".join(lines[-20:])
    final = states(lines)
    assert len(final) == 2 and final[0] == first and final[1] > later
    assert messages(lines)[-2:] == ["Optimization stopped early.", "Optimization Done."]
    for k in final:
        assert (workdir / "snap" / ("tiny_iter_%d.solverstate" % k)).exists()


def test_sigint_none_is_ignored_and_sighup_stop_stops(workdir):
    run = Training(workdir, "--sigint_effect", "none", "--sighup_effect", "stop",
                   "--set", "snapshot_after_train=false")
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGINT)
    run.wait_for(ITERATION, at_least=seen + 300)        # three displays later, still going
    assert run.proc.poll() is None
    run.send(signal.SIGHUP)
    code, lines = run.finish()
    assert code == 0, "\n".join(lines[-20:])
    assert messages(lines)[-2:] == ["Optimization stopped early.", "Optimization Done."]
    assert not any("Snapshotting" in l for l in lines)
    assert os.listdir(workdir / "snap") == []


@pytest.mark.parametrize("flags, signum, stop", [
    (["-sigint_effect", "snapshot", "-sighup_effect", "stop"], "SIGINT", "SIGHUP"),
    (["--sigterm_effect=snapshot"], "SIGTERM", "SIGINT")], ids=["sigint", "sigterm"])
def test_snapshot_effect_carries_on(workdir, flags, signum, stop):
    run = Training(workdir, *flags, "--set", "snapshot_after_train=false")
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(getattr(signal, signum))
    first = run.wait_for(STATE)
    run.wait_for(ITERATION, at_least=first + 200)
    run.send(getattr(signal, stop))
    code, lines = run.finish()
    assert code == 0 and first > seen
    assert states(lines) == [first]


def test_sigint_outside_training_ends_quietly(workdir):
    """``time`` has no signal actions (nor has Caffe's): SIGINT ends it with
    one error line and the shell's 130, not a traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "pycaffe_lowbit.cli", "time", "-model",
                             "net.prototxt", "-iterations", "100000000"], cwd=str(workdir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT), preexec_fn=_default_sigint)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if "Iteration: 2 forward-backward time" in line:
                proc.send_signal(signal.SIGINT)
                break
        _, rest = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in rest and rest.rstrip().endswith("] Interrupted.")


def test_sigterm_snapshots_and_stops_then_the_job_resumes(workdir):
    run = Training(workdir, "--set", "snapshot_after_train=false")
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGTERM)
    code, lines = run.finish()
    assert code == 0, "\n".join(lines[-20:])
    [stopped] = states(lines)                  # even without snapshot_after_train
    assert stopped > seen
    assert messages(lines)[-4:] == snapshot_lines(stopped) + ["Optimization stopped early.",
                                                              "Optimization Done."]
    state = "snap/tiny_iter_%d.solverstate" % stopped
    resumed = Training(workdir, "--snapshot", state)
    first = resumed.wait_for(ITERATION)
    assert stopped <= first < stopped + 100    # counting on from the snapshot
    assert "Resuming from %s" % state in messages(resumed.lines)
    resumed.send(signal.SIGTERM)
    code, lines = resumed.finish()
    assert code == 0 and len(states(lines)) == 1   # once, with snapshot_after_train too


def test_sigterm_none_is_ignored_and_stop_does_not_snapshot(workdir):
    run = Training(workdir, "--sigterm_effect=none")
    seen = run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGTERM)
    run.wait_for(ITERATION, at_least=seen + 300)
    assert run.proc.poll() is None
    run.send(signal.SIGINT)
    assert run.finish()[0] == 0
    run = Training(workdir, "--sigterm_effect", "stop", "--set", "snapshot_after_train=false")
    run.wait_for(ITERATION, at_least=200)
    run.send(signal.SIGTERM)
    code, lines = run.finish()
    assert code == 0 and states(lines) == []
    assert messages(lines)[-2:] == ["Optimization stopped early.", "Optimization Done."]
