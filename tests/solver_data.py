"""Test helper: feed the golden solver runs' digit LMDBs without a Data layer.

``LMDBFeed`` is a Python layer (``python_param { module: "solver_data"
layer: "LMDBFeed" param_str: "<lmdb path> <batch size>" }``) that behaves like
Caffe's Data layer on these LMDBs: Datums (uint8 1x28x28 + label) in key order,
scaled by 0.00390625 (the ``transform_param`` of the golden net), one batch per
forward, cycling through the database.

``golden_solver_param(run)`` gives the SolverParameter of a golden run with the
net inlined as ``net_param`` and each Data layer replaced by an LMDBFeed.
"""
import functools
import os

import numpy as np

from pycaffe_lowbit.io import text
from pycaffe_lowbit.layers.python_layer import PyLayer
from pycaffe_lowbit.proto import caffe_pb2

SOLVERS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "data", "golden", "solvers")


@functools.lru_cache(maxsize=None)
def read_lmdb(path):
    """(images float32 (N, C, H, W) unscaled, labels float32 (N,)) in key order."""
    import lmdb
    env = lmdb.open(path, readonly=True, lock=False)
    images, labels = [], []
    try:
        with env.begin() as txn:
            for _, value in txn.cursor():
                datum = caffe_pb2.Datum()
                datum.ParseFromString(value)
                shape = (datum.channels, datum.height, datum.width)
                if datum.data:
                    pixels = np.frombuffer(datum.data, np.uint8)
                else:
                    pixels = np.asarray(datum.float_data, np.float32)
                images.append(pixels.reshape(shape).astype(np.float32))
                labels.append(datum.label)
    finally:
        env.close()
    return np.stack(images), np.asarray(labels, np.float32)


class LMDBFeed(PyLayer):
    """tops: data (batch, C, H, W) scaled, label (batch,)."""

    def setup(self, bottom, top):
        parts = self.param_str.split()
        self.source = parts[0]
        self.batch_size = int(parts[1])
        self.scale = float(parts[2]) if len(parts) > 2 else 0.00390625
        images, labels = read_lmdb(self.source)
        self.images = images * np.float32(self.scale)
        self.labels = labels
        self.cursor = 0
        top[0].reshape((self.batch_size,) + self.images.shape[1:])
        top[1].reshape((self.batch_size,))

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        n = len(self.labels)
        idx = (self.cursor + np.arange(self.batch_size)) % n
        self.cursor = (self.cursor + self.batch_size) % n
        top[0].data[...] = self.images[idx]
        top[1].data[...] = self.labels[idx]

    def backward(self, top, propagate_down, bottom):
        pass


def feed_net_param(net_param, base_dir=SOLVERS):
    """A copy of ``net_param`` with each Data layer replaced by an LMDBFeed."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    for layer in out.layer:
        if layer.type != "Data":
            continue
        source = os.path.join(base_dir, layer.data_param.source)
        scale = layer.transform_param.scale if layer.transform_param.HasField("scale") else 1.0
        batch = layer.data_param.batch_size
        layer.type = "Python"
        layer.ClearField("data_param")
        layer.ClearField("transform_param")
        layer.python_param.module = "solver_data"
        layer.python_param.layer = "LMDBFeed"
        layer.python_param.param_str = "%s %d %r" % (source, batch, scale)
    return out


def golden_solver_param(run):
    """The SolverParameter of golden run ``run`` with an inline, fed net."""
    param = text.read_solver_param(os.path.join(SOLVERS, run + ".solver.prototxt"))
    net = text.read_net_param(os.path.join(SOLVERS, param.net))
    param.ClearField("net")
    param.net_param.CopyFrom(feed_net_param(net))
    param.snapshot = 0
    param.snapshot_prefix = os.path.join(SOLVERS, "snap_unused", "lenet")
    return param


# -- tiny nets for closed-form checks ------------------------------------------
FEEDS = {}


class ArrayFeed(PyLayer):
    """Yields ``FEEDS[param_str][k % len]`` (a tuple of arrays, one per top) on
    the k-th forward: a Data layer over batches set up by the test."""

    def setup(self, bottom, top):
        self.batches = FEEDS[self.param_str]
        self.cursor = 0
        for blob, array in zip(top, self.batches[0]):
            blob.reshape(np.shape(array))

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        batch = self.batches[self.cursor % len(self.batches)]
        self.cursor += 1
        for blob, array in zip(top, batch):
            blob.data[...] = array

    def backward(self, top, propagate_down, bottom):
        pass


TINY_NET = """
name: "tiny"
layer { name: "feed" type: "Python" top: "x" top: "y"
        python_param { module: "solver_data" layer: "ArrayFeed" param_str: "%(train)s" }
        include { phase: TRAIN } }
layer { name: "feed" type: "Python" top: "x" top: "y"
        python_param { module: "solver_data" layer: "ArrayFeed" param_str: "%(test)s" }
        include { phase: TEST } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "out"
        param { lr_mult: %(lr_w)r decay_mult: %(decay_w)r }
        param { lr_mult: %(lr_b)r decay_mult: %(decay_b)r }
        inner_product_param { num_output: 2
          weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "y" top: "loss" }
"""


def tiny_net_param(train_key, test_key=None, lr_w=1.0, lr_b=2.0, decay_w=1.0, decay_b=0.5):
    """y ~ W x + b, EuclideanLoss: loss = sum((W x + b - y)^2) / (2 N)."""
    net = caffe_pb2.NetParameter()
    text.parse_text(TINY_NET % dict(train=train_key, test=test_key or train_key, lr_w=lr_w,
                                    lr_b=lr_b, decay_w=decay_w, decay_b=decay_b), net)
    return net
