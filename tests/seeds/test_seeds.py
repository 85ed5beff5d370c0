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
from pycaffe_lowbit.io.text import read_net_param, read_solver_param
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

SEEDS = paths.SEEDS
FILES = sorted(glob.glob(os.path.join(SEEDS, "**", "*.prototxt"), recursive=True))
NET_FILES = [f for f in FILES if "solver" not in os.path.basename(f)]
SOLVER_FILES = [f for f in FILES if "solver" in os.path.basename(f)]
DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData"}
BATCH = 2

pytestmark = pytest.mark.skipif(not FILES, reason="../shared/seeds not present")


def _rel(path):
    return os.path.relpath(path, SEEDS)


def _image_shape(path, layer):
    """(C, H, W) of the images a data layer of this seed file would deliver."""
    crop = layer.transform_param.crop_size
    lower = path.lower()
    if "mnist" in lower:
        return (1, 28, 28)
    if "cifar" in lower:
        return (3, crop or 32, crop or 32)
    return (3, crop or 227, crop or 227)


def with_inputs(path, param):
    """A copy of ``param`` whose data layers are Input layers."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    for layer in out.layer:
        if layer.type not in DATA_TYPES:
            continue
        shape = _image_shape(path, layer)
        tops = list(layer.top)
        include = [r for r in layer.include]
        exclude = [r for r in layer.exclude]
        name = layer.name
        layer.Clear()
        layer.name, layer.type = name, "Input"
        layer.top.extend(tops)
        layer.include.extend(include)
        layer.exclude.extend(exclude)
        layer.input_param.shape.add().dim.extend((BATCH,) + shape)
        for _ in tops[1:]:
            layer.input_param.shape.add().dim.extend([BATCH])
    for layer in out.layer:
        if layer.type == "Input" and layer.name not in {l.name for l in param.layer
                                                         if l.type in DATA_TYPES}:
            for shape in layer.input_param.shape:
                if len(shape.dim):
                    shape.dim[0] = BATCH
    return out


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
