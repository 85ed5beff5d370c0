"""Short training runs on the bundled 8x8 digits, fed through Input layers.

``train(net_text, solver_text, iters)`` builds a solver whose net_param is
``net_text`` (with Input layers 'data' (B, 1, 8, 8) and 'label' (B,)), feeds
shuffled train batches of pixels scaled to [-1, 1] for ``iters`` iterations and
returns (solver, test accuracy over the held-out fifth, in TEST phase).
"""
import gzip
import os

import numpy as np
from google.protobuf import text_format

import pycaffe_lowbit as caffe
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import get_solver

from pycaffe_lowbit.data.datasets.digits import CSV  # noqa: E402
BATCH = 32


def digits():
    """((train x, train y), (test x, test y)): x (N, 1, 8, 8) in [-1, 1]; every
    fifth sample (from the third) is a test sample."""
    with gzip.open(CSV, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    x = (table[:, :64] / 8.0 - 1.0).reshape(-1, 1, 8, 8).astype(np.float32)
    y = table[:, 64].astype(np.float32)
    test = np.arange(len(y)) % 5 == 2
    return (x[~test], y[~test]), (x[test], y[test])


def accuracy(net, x, y):
    """Top-1 accuracy of ``net`` (its 'score' blob) over x, in batches."""
    hits = 0
    for i in range(0, len(y), BATCH):
        xb = x[i:i + BATCH]
        net.blobs["data"].reshape(*xb.shape)
        net.blobs["label"].reshape(len(xb))
        net.blobs["data"].data[...] = xb
        net.blobs["label"].data[...] = y[i:i + BATCH]
        net.forward()
        hits += int((net.blobs["score"].data.argmax(1) == y[i:i + BATCH]).sum())
    return hits / len(y)


def train(net_text, solver_text, iters, seed=3):
    (xtr, ytr), (xte, yte) = digits()
    sp = text_format.Parse(solver_text, caffe_pb2.SolverParameter())
    sp.max_iter = iters
    sp.random_seed = seed
    text_format.Parse(net_text, sp.net_param)
    solver = get_solver(sp)
    rng = np.random.default_rng(seed)
    order = np.array([], int)
    for _ in range(iters):
        if len(order) < BATCH:
            order = np.concatenate([order, rng.permutation(len(ytr))])
        idx, order = order[:BATCH], order[BATCH:]
        solver.net.blobs["data"].data[...] = xtr[idx]
        solver.net.blobs["label"].data[...] = ytr[idx]
        solver.step(1)
    test = caffe.Net(sp.net_param, caffe.TEST)
    test.share_with(solver.net)
    return solver, accuracy(test, xte, yte)


# -- the recipes: small nets of each method on 8x8 digits ------------------------
_INPUT = """
layer { name: 'data' type: 'Input' top: 'data' top: 'label'
  input_param { shape { dim: %d dim: 1 dim: 8 dim: 8 } shape { dim: %d } } }
""" % (BATCH, BATCH)

_BN = """
layer { name: '%(n)s_bn' type: 'BatchNorm' bottom: '%(b)s' top: '%(t)s'
  param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }
  batch_norm_param { eps: 1e-4 moving_average_fraction: 0.9 } }
layer { name: '%(n)s_sc' type: 'Scale' bottom: '%(t)s' top: '%(t)s' scale_param { bias_term: true } }
"""


def qnn_net(nb, nonlinearity):
    """QNN: 2 x [QNNConvolution 32 -> BN -> QNNActivation], max pool, fc -> BN,
    squared hinge (HingeLoss L2, weight 1/10)."""
    sym = "true" if nonlinearity == "HARDTANH" else "false"
    text = _INPUT
    bottom = "data"
    for name in ("c1", "c2"):
        text += """
layer { name: '%(n)s' type: 'QNNConvolution' bottom: '%(b)s' top: '%(n)s'
  param { clip_data: 1 glorot_lr_scale: true }
  convolution_param { num_output: 32 kernel_size: 3 pad: 1 bias_term: false
    weight_filler { type: 'uniform' min: -1 max: 1 } }
  qnn_weight_param { nb: %(nb)d symmetric: %(sym)s } }
""" % dict(n=name, b=bottom, nb=nb, sym=sym)
        text += _BN % dict(n=name, b=name, t=name + "_bn")
        text += """
layer { name: '%(n)s_act' type: 'QNNActivation' bottom: '%(n)s_bn' top: '%(n)s_act'
  qnn_activation_param { nb: %(nb)d nonlinearity: %(nl)s } }
""" % dict(n=name, nb=nb, nl=nonlinearity)
        bottom = name + "_act"
    text += """
layer { name: 'pool' type: 'Pooling' bottom: 'c2_act' top: 'pool'
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: 'fc' type: 'InnerProduct' bottom: 'pool' top: 'fc'
  inner_product_param { num_output: 10 weight_filler { type: 'xavier' } } }
""" + _BN % dict(n="fc", b="fc", t="score") + """
layer { name: 'loss' type: 'HingeLoss' bottom: 'score' bottom: 'label' top: 'loss'
  hinge_loss_param { norm: L2 } loss_weight: 0.1 }
"""
    return text


QNN_SOLVER = ("type: 'Adam' base_lr: 0.01 final_lr: 3e-5 lr_policy: 'exp_decay' "
              "stepsize: 45 momentum: 0.9 momentum2: 0.999 delta: 1e-8 display: 0")


def ws_net(value_set):
    """Weight search: full-precision conv 32 -> BN -> ReLU, searched conv 32 ->
    BN -> ReLU, max pool, full-precision fc, softmax loss."""
    return _INPUT + """
layer { name: 'c1' type: 'Convolution' bottom: 'data' top: 'c1'
  convolution_param { num_output: 32 kernel_size: 3 pad: 1 bias_term: false
    weight_filler { type: 'msra' } } }
""" + _BN % dict(n="c1", b="c1", t="c1_bn") + """
layer { name: 'c1_relu' type: 'ReLU' bottom: 'c1_bn' top: 'c1_bn' }
layer { name: 'c2' type: 'WeightSearchConvolution' bottom: 'c1_bn' top: 'c2'
  convolution_param { num_output: 32 kernel_size: 3 pad: 1 bias_term: false }
  weight_search_param { value_set: '%s' init_temperature: 1 temperature_decay: 0.9
    temperature_step: 1 iters_per_epoch: 45 min_temperature: 1e-5 } }
""" % value_set + _BN % dict(n="c2", b="c2", t="c2_bn") + """
layer { name: 'c2_relu' type: 'ReLU' bottom: 'c2_bn' top: 'c2_bn' }
layer { name: 'pool' type: 'Pooling' bottom: 'c2_bn' top: 'pool'
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: 'fc' type: 'InnerProduct' bottom: 'pool' top: 'score'
  inner_product_param { num_output: 10 weight_filler { type: 'xavier' } } }
layer { name: 'loss' type: 'SoftmaxWithLoss' bottom: 'score' bottom: 'label' top: 'loss' }
"""


WS_SOLVER = ("type: 'SGD' base_lr: 0.05 final_lr: 0 lr_policy: 'cosine' momentum: 0.9 "
             "weight_decay: 5e-4 display: 0")


def run_recipe(method, iters):
    """(solver, test accuracy) of a recipe: 'qnn-nb0', 'qnn-nb2' or 'ws-<set>'."""
    if method == "qnn-nb0":
        return train(qnn_net(0, "HARDTANH"), QNN_SOLVER, iters)
    if method == "qnn-nb2":
        return train(qnn_net(2, "RELU"), QNN_SOLVER, iters)
    if method.startswith("ws-"):
        return train(ws_net(method[3:]), WS_SOLVER, iters)
    raise ValueError("unknown recipe %r" % method)


def exported_accuracy(solver, folder):
    """Export the searched net (solver.net's weights) to plain layers, check the
    values, and return (plain test accuracy, weights outside their sets)."""
    from pycaffe_lowbit.formats import caffemodel
    from pycaffe_lowbit.deploy.ws_export import check_in_set, export_searched
    model = solver.param.net_param
    plain, weights = export_searched(model, solver.net.to_proto())
    outside = sum(o for _, _, o, _ in check_in_set(model, weights))
    path = os.path.join(folder, "plain.caffemodel")
    caffemodel.write_net_binary(weights, path)
    net = caffe.Net(plain, path, caffe.TEST)
    _, (xte, yte) = digits()
    return accuracy(net, xte, yte), outside


if __name__ == "__main__":       # python tests/support/digits_feed.py METHOD ITERS [FOLDER]
    import json
    import sys
    solver, acc = run_recipe(sys.argv[1], int(sys.argv[2]))
    result = {"accuracy": acc}
    if sys.argv[1].startswith("ws-"):
        result["plain_accuracy"], result["outside"] = exported_accuracy(solver, sys.argv[3])
    print(json.dumps(result))
