"""Stand-ins for the snapshot tests: a small MLP net and an object with the
Solver contract's attributes (param, net, iter, current_step, history) that
``solvers.snapshot`` writes and restores."""
import textwrap
import types

import numpy as np

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.proto import caffe_pb2

from .helpers import MLP_NET

MLP = MLP_NET


def make_net(text=MLP):
    return caffe.Net(parse_net_text(textwrap.dedent(text)), caffe.TRAIN)


def stand_in(prefix, seed=0, iteration=7, current_step=2, history_factor=1, fmt=None,
             snapshot_diff=False):
    """An object with the Solver contract's attributes that snapshot/restore use."""
    caffe.set_random_seed(seed)
    net = make_net()
    rng = np.random.default_rng(seed)
    history = []
    for _ in range(history_factor):
        for p in net.learnable_params:
            b = Blob(p.shape)
            b.data[...] = rng.standard_normal(p.shape)
            history.append(b)
    param = caffe_pb2.SolverParameter(snapshot_prefix=str(prefix), snapshot_diff=snapshot_diff)
    if fmt is not None:
        param.snapshot_format = fmt
    return types.SimpleNamespace(param=param, net=net, iter=iteration,
                                 current_step=current_step, history=history)


def weights(net):
    return [p.data.copy() for p in net.learnable_params]


def assert_same_state(a, b):
    assert a.iter == b.iter and a.current_step == b.current_step
    for x, y in zip(weights(a.net), weights(b.net)):
        np.testing.assert_array_equal(x, y)
    assert len(a.history) == len(b.history)
    for x, y in zip(a.history, b.history):
        np.testing.assert_array_equal(x.data, y.data)
