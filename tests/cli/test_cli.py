"""lowbit-caffe: --version, --help, gflags spellings, `time`."""
import os
import subprocess
import sys

import pytest

from pycaffe_lowbit import __version__, cli
from support import paths

ROOT = paths.ROOT
LENET = os.path.join(ROOT, "models", "lenet", "lenet_deploy.prototxt")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0 and __version__ in out.stdout
    out = run_cli("--help")
    assert out.returncode == 0
    for name in ("train", "test", "time", "device_query"):
        assert name in out.stdout


@pytest.mark.parametrize("spelling", [["-model", LENET], ["--model", LENET],
                                      ["-model=" + LENET], ["--model=" + LENET]])
def test_gflags_spellings(spelling):
    args = cli.build_parser().parse_args(["time", *spelling, "-iterations", "2"])
    assert args.model == LENET and args.iterations == 2


def test_time_prints_caffe_report():
    out = run_cli("time", "-model", LENET, "-iterations", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    log = out.stderr
    for line in ("Use CPU.", "Performing Forward", "Initial loss: 0", "*** Benchmark begins ***",
                 "Iteration: 2 forward-backward time:", "conv1\tforward:",
                 "Average Forward-Backward:", "*** Benchmark ends ***"):
        assert line in log, line
    assert log.splitlines()[0][0] == "I" and "] " in log.splitlines()[0]


def test_missing_model_file_is_a_clear_error():
    out = run_cli("time", "-model", "nope.prototxt")
    assert out.returncode != 0
    assert "nope.prototxt" in out.stderr
    assert "Traceback" not in out.stderr
