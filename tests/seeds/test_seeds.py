"""Every prototxt of the seeds (../shared/seeds) parses; nets whose layer types
all exist build in both phases and run forward and backward on random input.

Data layers are replaced by Input layers of the shape the data would have (in
the test, never in the file), with the batch cut to 2 to keep this quick.
"""
import glob
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import read_net_param, read_solver_param
from support import paths
from support.seed_nets import with_inputs

SEEDS = paths.SEEDS
FILES = sorted(glob.glob(os.path.join(SEEDS, "**", "*.prototxt"), recursive=True))
NET_FILES = [f for f in FILES if "solver" not in os.path.basename(f)]
SOLVER_FILES = [f for f in FILES if "solver" in os.path.basename(f)]

pytestmark = pytest.mark.skipif(not FILES, reason="../shared/seeds not present")


def _rel(path):
    return os.path.relpath(path, SEEDS)


@pytest.mark.parametrize("path", SOLVER_FILES, ids=_rel)
def test_solver_file_parses(path):
    solver = read_solver_param(path)
    assert solver.base_lr > 0 or solver.HasField("base_lr")


@pytest.mark.parametrize("path", NET_FILES, ids=_rel)
def test_net_file_parses(path):
    param = read_net_param(path)
    assert len(param.layer) > 0


@pytest.mark.parametrize("phase", [caffe.TRAIN, caffe.TEST], ids=["TRAIN", "TEST"])
@pytest.mark.parametrize("path", NET_FILES, ids=_rel)
def test_net_builds_and_runs(path, phase):
    param = with_inputs(path, read_net_param(path))
    missing = sorted({l.type for l in param.layer} - set(caffe.layer_type_list()))
    if missing:
        pytest.skip("layer types from later issues: %s" % ", ".join(missing))
    caffe.set_random_seed(0)
    # A file whose data layers for this phase sit under stages (mnist_autoencoder's
    # "test-on-train") is built with the first such stage, as its solver does.
    stages = sorted({s for l in param.layer for r in l.include
                     if r.phase == phase for s in r.stage})
    net = caffe.Net(param, phase, stages=stages[:1])
    for layer in net.layers:          # the statistics a trained model would carry
        if layer.type == "BatchNorm":
            layer.blobs[1].data[...] = 1.0
            layer.blobs[2].data[...] = 1.0
    rng = np.random.default_rng(0)
    for name in net.inputs:
        blob = net.blobs[name]
        if blob.num_axes == 1:      # labels
            blob.data[...] = rng.integers(0, 10, blob.shape)
        else:
            blob.data[...] = rng.standard_normal(blob.shape)
    out = net.forward()
    for name, value in out.items():
        assert np.all(np.isfinite(value)), "%s: non-finite %s" % (_rel(path), name)
    net.backward()
    for name, blobs in net.params.items():
        for blob in blobs:
            assert np.all(np.isfinite(blob.diff)), "%s: non-finite diff in %s" % (_rel(path), name)
