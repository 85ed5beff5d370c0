"""Shared by the tools tests: running lowbit-caffe as a user does, reading a
database back, and the golden convert_imageset inputs."""
import os
import subprocess
import sys

from pycaffe_lowbit.data import open_db, parse_datum
from . import paths

ROOT = paths.ROOT
IO = os.path.join(paths.GOLDEN, "io")
IMAGES = os.path.join(IO, "images") + os.sep
IMAGE_LIST = os.path.join(IO, "images_list.txt")


def run_cli(cwd, *args):
    """``lowbit-caffe ARGS`` in ``cwd`` with this checkout's package."""
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=str(cwd),
                          env=dict(os.environ, PYTHONPATH=ROOT))


def records(path, backend="lmdb"):
    """[(key, value bytes)] in key order."""
    return [(bytes(k), bytes(v)) for k, v in open_db(str(path), backend).items()]


def datums(path, backend="lmdb"):
    """[(key str, Datum)] in key order."""
    return [(k.decode(), parse_datum(v)) for k, v in records(path, backend)]


def assert_one_line_error(out, *fragments):
    """Exit status 1, no traceback, and one E line holding every fragment."""
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("E")]
    assert len(errors) == 1, out.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
