"""BVLC Caffe's own pycaffe tests (``python/caffe/test/*.py``) run against this
package with ``caffe`` aliased to it: in CPU mode, and in GPU mode on the strict
CuPy double (``caffe.set_mode_gpu()`` before each test), where ``blob.data`` is
the NumPy host view of a device blob (core/synced.py).

Caffe's files are not copied into this repository. They are read at test time
from the reference Caffe source archive (``../shared/refcaffe/
caffe-9b89154-src.tar.gz``) when it holds ``python/caffe/test``, or from the
folder ``$LOWBIT_UPSTREAM_PYCAFFE_TESTS``; with neither, the test skips and says
so.

In CI this test always skips: the reference archive holds Caffe's src, include
and tools but no ``python/`` tree, and CI sets no folder. What CI runs in its
place, in CPU mode and in GPU mode on the double, is our own test of the same
pycaffe behaviours (nets, solvers, Python layers, NetSpec, caffe.io, the layer
list), written independently of Caffe's files: tests/pycaffe/test_modes_net.py,
test_modes_solver.py, test_modes_python_layer.py and test_modes_spec_io.py (the
``pycaffe_mode`` fixture of tests/pycaffe/conftest.py; .ci/run's double pass).
Locally, point ``$LOWBIT_UPSTREAM_PYCAFFE_TESTS`` at a Caffe checkout's
python/caffe/test to run Caffe's own files as well. They run in a child pytest, in a scratch folder (``test_solver`` writes its
snapshots to the working directory), with a generated conftest.py that makes
the alias. Left out: ``test_draw`` (it draws every prototxt of a Caffe
checkout's ``models/`` and ``examples/`` trees, which the archive lacks).

Python-version shims only (nothing about Caffe): ``six.itervalues`` when six is
not installed, and ``assertEquals``/``assertRaisesRegexp``, gone in Python 3.12.
"""
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

from support import paths

ARCHIVE = os.path.join(paths.SHARED, "refcaffe", "caffe-9b89154-src.tar.gz")
MEMBER = re.compile(r"(^|/)python/caffe/test/([^/]+\.py)$")
FOLDER_VARIABLE = "LOWBIT_UPSTREAM_PYCAFFE_TESTS"
LEFT_OUT = ["test_draw.py"]

CONFTEST = '''
import os
import sys
import unittest

import pytest

sys.path.insert(0, %(tests)r)            # support.cupy_double
import pycaffe_lowbit as caffe

sys.modules["caffe"] = caffe
for _name, _module in list(sys.modules.items()):
    if _name.startswith("pycaffe_lowbit."):
        sys.modules["caffe." + _name[len("pycaffe_lowbit."):]] = _module
if not hasattr(unittest.TestCase, "assertEquals"):
    unittest.TestCase.assertEquals = unittest.TestCase.assertEqual
if not hasattr(unittest.TestCase, "assertRaisesRegexp"):
    unittest.TestCase.assertRaisesRegexp = unittest.TestCase.assertRaisesRegex

GPU = os.environ.get("LOWBIT_UPSTREAM_MODE") == "gpu"


@pytest.fixture(autouse=True)
def _mode():
    if GPU:
        caffe.set_mode_gpu()
    yield
    caffe.set_mode_cpu()
'''

SIX = '''"""six.itervalues, for Caffe's tests where six is not installed."""
def itervalues(d, **kw):
    return iter(d.values(**kw))
'''


def upstream_files():
    """{file name: source} of Caffe's pycaffe tests, and where they came from;
    ({}, why) when they are not available."""
    folder = os.environ.get(FOLDER_VARIABLE)
    if folder:
        files = {f: open(os.path.join(folder, f)).read() for f in sorted(os.listdir(folder))
                 if f.startswith("test_") and f.endswith(".py")}
        return files, folder
    if not os.path.exists(ARCHIVE):
        return {}, "%s is not here" % ARCHIVE
    files = {}
    with tarfile.open(ARCHIVE) as archive:
        for member in archive.getmembers():
            match = MEMBER.search(member.name)
            if match and member.isfile():
                files[match.group(2)] = archive.extractfile(member).read().decode("utf-8")
    if not files:
        return {}, ("%s holds no python/caffe/test (only src, include, tools); set $%s "
                    "to a folder of Caffe's python/caffe/test/*.py" % (ARCHIVE, FOLDER_VARIABLE))
    return files, ARCHIVE


@pytest.mark.parametrize("mode", ["cpu", pytest.param("gpu", marks=pytest.mark.double)])
def test_caffes_own_pycaffe_tests_pass(mode, tmp_path):
    files, source = upstream_files()
    if not files:
        pytest.skip("Caffe's pycaffe tests are not available: " + source)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "conftest.py").write_text(CONFTEST % {"tests": paths.TESTS})
    try:
        import six  # noqa: F401
    except ImportError:
        (tmp_path / "six.py").write_text(SIX)
    env = dict(os.environ, LOWBIT_UPSTREAM_MODE=mode,
               PYTHONPATH=os.pathsep.join([paths.ROOT, os.environ.get("PYTHONPATH", "")]))
    if mode == "gpu":
        env["LOWBIT_CUPY_MODULE"] = "support.cupy_double"
    deselect = [arg for name in LEFT_OUT if name in files for arg in ("--ignore", name)]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-o", "addopts=", "-W", "ignore::DeprecationWarning"] + deselect,
                         cwd=str(tmp_path), env=env, capture_output=True, text=True,
                         timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, "Caffe's tests (%s, %s mode): %s\n%s" % (
        source, mode, summary, run.stdout[-6000:] + run.stderr[-2000:])
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 40, summary            # the whole suite ran, not a part of it
    shutil.rmtree(str(tmp_path), ignore_errors=True)
