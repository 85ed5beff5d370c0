"""Short training runs on the bundled digits that learn (chance is 10 %): QNN
BinaryNet (nb = 0), QNN 2-bit relu, and weight search over {-1, 1} and
{+-1, +-1/2}, whose export to plain layers keeps every weight in its set and
the same test accuracy. Each run is a subprocess with one BLAS thread (tiny
GEMMs are slowest with many threads on a busy machine)."""
import json
import os
import subprocess
import sys

import pytest
from support import paths

ROOT = paths.ROOT
ITERS = 200      # 4.5 epochs of 32


def _run(method, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "support", "digits_feed.py"),
                          method, str(ITERS), str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["qnn-nb0", "qnn-nb2"])
def test_qnn_learns_digits(method, tmp_path):
    assert _run(method, tmp_path)["accuracy"] > 0.8


@pytest.mark.slow
@pytest.mark.parametrize("method", ["ws-1b", "ws-po2-2b"])
def test_weight_search_learns_digits_and_exports(method, tmp_path):
    result = _run(method, tmp_path)
    assert result["accuracy"] > 0.85
    assert result["outside"] == 0
    assert result["plain_accuracy"] == result["accuracy"]
