"""The progress bar: drawn with an ETA when the CLI runs on a terminal (a
pseudo-terminal here), never into pipes or files unless asked (``--progress``),
and never on the same line as a log line."""
import io
import os
import re
import select
import subprocess
import sys

import numpy as np
import pytest

from pycaffe_lowbit.logs import progress
from pycaffe_lowbit.cli.score import score
from pycaffe_lowbit.logs.glog import pause_for, setup_logging

from support.helpers import TINY_NET
from support import paths

ROOT = paths.ROOT

NET = TINY_NET

# Long enough (~0.5 s) for tqdm to redraw with a measured rate, hence an ETA.
SOLVER = """
net: "net.prototxt"
base_lr: 0.01
lr_policy: "fixed"
max_iter: 1500
display: 300
snapshot_after_train: false
"""

GLOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [\w.]+:\d+\] ")
# tqdm's "  40%|####      | 1200/3000 [00:00<00:01, 3500.2iter/s, loss=0.05]"
BAR_WITH_ETA = re.compile(r"(train|time): +\d+%\|.*\| (\d+)/(\d+) \[\d\d:\d\d<\d\d:\d\d, ")
BAR = re.compile(r"\d+%\|")


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    (tmp_path / "solver.prototxt").write_text(SOLVER)
    return tmp_path


def cli(*args):
    return [sys.executable, "-m", "pycaffe_lowbit.cli", *args]


def env():
    return dict(os.environ, PYTHONPATH=ROOT)


def run_on_terminal(cwd, args):
    """Run with stdout and stderr on one pseudo-terminal (100 columns);
    (exit code, everything written to it)."""
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(args, cwd=str(cwd), env=env(), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                raise AssertionError("no output in 60 s")
            try:
                data = os.read(master, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode("utf-8", "replace")


def visible(screen):
    """The lines a terminal shows once ``screen`` is written: each carriage
    return goes back to the start of the line and overwrites it."""
    lines = []
    for line in screen.split("\n"):
        shown = ""
        for part in line.split("\r"):
            shown = part + shown[len(part):]
        lines.append(shown.rstrip())
    return lines


def check_lines_apart(screen):
    """Each log line starts a line of its own (never written after bar text),
    and once the run is over no bar is left on the screen: the terminal holds
    the log lines alone."""
    for match in GLOG.finditer(screen):
        start = match.start()
        assert start == 0 or screen[start - 1] in "\r\n", screen[max(0, start - 80):start + 40]
    shown = visible(screen)
    assert not [line for line in shown if BAR.search(line)]
    assert GLOG.match(shown[0]) and shown[-1] == ""
    assert shown[-2].endswith("Optimization Done.") or "Benchmark ends" in shown[-2]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_train_on_a_terminal_shows_a_bar_with_eta(workdir):
    code, screen = run_on_terminal(workdir, cli("train", "-solver", "solver.prototxt"))
    assert code == 0, screen[-2000:]
    bars = BAR_WITH_ETA.findall(screen)
    assert bars, screen[-2000:]
    assert {total for _, _, total in bars} == {"1500"}
    done = [int(n) for _, n, _ in bars]
    assert done == sorted(done) and 0 < done[-1] <= 1500
    assert "loss=" in screen
    check_lines_apart(screen)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_off_and_time_on_a_terminal(workdir):
    code, screen = run_on_terminal(workdir, cli("train", "-solver", "solver.prototxt",
                                                "--progress=off"))
    assert code == 0 and "Optimization Done." in screen
    assert not BAR.search(screen)
    code, screen = run_on_terminal(workdir, cli("time", "-model", "net.prototxt",
                                                "-iterations", "300"))
    assert code == 0, screen[-2000:]
    assert "time: " in screen and BAR.search(screen)
    check_lines_apart(screen)


def test_piped_output_has_no_bar_unless_asked(workdir):
    out = subprocess.run(cli("train", "-solver", "solver.prototxt"), cwd=str(workdir),
                         env=env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == ""
    assert "\r" not in out.stderr and not BAR.search(out.stderr)
    # Pure glog: every line is a glog line, or a line of a multi-line message
    # (the solver's parameters, the nets) as in Caffe's logs.
    lines = out.stderr.splitlines()
    assert GLOG.match(lines[0]) and GLOG.match(lines[-1])
    assert sum(bool(GLOG.match(l)) for l in lines) > 0.5 * len(lines)
    forced = subprocess.run(cli("train", "-solver", "solver.prototxt", "-progress", "on"),
                            cwd=str(workdir), env=env(), capture_output=True, text=True)
    assert forced.returncode == 0
    assert BAR.search(forced.stdout) and "train: " in forced.stdout
    assert not BAR.search(forced.stderr)


def test_modes():
    tty, pipe = io.StringIO(), io.StringIO()
    tty.isatty = lambda: True
    assert progress.wanted("auto", tty, tty)
    assert not progress.wanted("auto", tty, pipe) and not progress.wanted("auto", pipe, tty)
    assert progress.wanted("on", pipe, pipe) and not progress.wanted("off", tty, tty)
    with pytest.raises(ValueError, match="--progress must be one of auto, on, off"):
        progress.wanted("yes")


def test_log_lines_step_around_the_bar(capsys):
    """A log line clears the bar first and the bar is redrawn after it."""
    log = setup_logging(stream=sys.stdout)
    calls = []

    class Pause:
        def __enter__(self):
            calls.append("clear")

        def __exit__(self, *exc):
            calls.append("redraw")

    with pause_for(Pause):
        log.info("Iteration 1, lr = 0.1")
    log.info("after")
    assert calls == ["clear", "redraw"]
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("] Iteration 1, lr = 0.1") and out[1].endswith("] after")


def test_score_with_a_bar(capsys):
    """``test``'s loop advances a bar over its iterations when one is wanted."""
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.formats.text import parse_net_text
    net = caffe.Net(parse_net_text(NET), caffe.TEST)
    log = setup_logging(stream=io.StringIO())
    means = score(net, 4, log, progress="on")
    assert np.isfinite(means["loss"])
    assert "test: " in capsys.readouterr().out
