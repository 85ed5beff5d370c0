"""Test helpers for the solver tests.

``golden_solver_param(run)`` gives the SolverParameter of a golden run of
official Caffe (tests/fixtures/golden/solvers) with its net inlined as
``net_param``. The net keeps its Data layers: their sources are relative to
SOLVERS, Caffe's working directory for those runs, so run it from there.

``ArrayFeed`` and ``tiny_net_param`` make a tiny net for closed-form checks.
"""
import os

import numpy as np

from pycaffe_lowbit.formats import text
from pycaffe_lowbit.layers.python_layer import PyLayer
from pycaffe_lowbit.proto import caffe_pb2

from . import paths

SOLVERS = os.path.join(paths.GOLDEN, "solvers")


def golden_solver_param(run):
    """The SolverParameter of golden run ``run`` with its net inline."""
    param = text.read_solver_param(os.path.join(SOLVERS, run + ".solver.prototxt"))
    net = text.read_net_param(os.path.join(SOLVERS, param.net))
    param.ClearField("net")
    param.net_param.CopyFrom(net)
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
        python_param { module: "support.solver_data" layer: "ArrayFeed" param_str: "%(train)s" }
        include { phase: TRAIN } }
layer { name: "feed" type: "Python" top: "x" top: "y"
        python_param { module: "support.solver_data" layer: "ArrayFeed" param_str: "%(test)s" }
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
