"""The checked-in caffe_pb2 runs on protobuf 4.x as well as on today's runtime.

Installs protobuf 4.x into a private folder (once, cached under
.pytest_cache) and, in a subprocess that sees that protobuf first, parses a
prototxt and a Caffe .caffemodel and builds a net.
"""
import os
import subprocess
import sys

import pytest
from support import paths

ROOT = paths.ROOT
TARGET = os.path.join(ROOT, ".pytest_cache", "protobuf4")

SCRIPT = r"""
import google.protobuf, sys
assert google.protobuf.__version__.startswith("4."), google.protobuf.__version__
import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats import caffemodel
base = sys.argv[1]
net = caffe.Net(base + ".prototxt", base + ".caffemodel", caffe.TEST)
param = caffemodel.read_net_binary(base + ".caffemodel")
print("ok", google.protobuf.__version__, len(param.layer), len(net.layers))
"""


@pytest.mark.slow
def test_runs_on_protobuf_4(tmp_path):
    if not os.path.isdir(os.path.join(TARGET, "google", "protobuf")):
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", TARGET,
             "protobuf>=4.21.6,<5"], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip("cannot install protobuf 4.x here: %s" % result.stderr[-300:])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TARGET, ROOT]))
    base = os.path.join(paths.GOLDEN, "nets", "lenet")
    out = subprocess.run([sys.executable, "-c", SCRIPT, base], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok 4."), out.stdout
