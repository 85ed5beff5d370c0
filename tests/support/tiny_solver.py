"""A tiny float64 net for the solver tests, out = W x + b with a EuclideanLoss,
fed by ``solver_data.ArrayFeed``, and ``reference``: an independent float64
implementation of Caffe's update rules to compare a solver with."""
import math

import numpy as np

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import get_solver

from . import solver_data

W0 = np.array([[0.3, -0.2, 0.5], [0.1, 0.4, -0.6]])
B0 = np.array([0.05, -0.1])


def make_batches(key, n_batches=3, n=4, seed=0):
    rng = np.random.RandomState(seed)
    batches = [(rng.randn(n, 3), rng.randn(n, 2)) for _ in range(n_batches)]
    solver_data.FEEDS[key] = batches
    return batches


def grads(W, b, batch):
    x, y = batch
    r = x @ W.T + b - y
    n = len(x)
    return r.T @ x / n, r.sum(0) / n, float((r * r).sum() / (2 * n))


def tiny_solver(cls_or_type, key="tiny", test_key=None, net_kwargs=None, **fields):
    """A solver on the tiny net (float64), weights set to W0, B0."""
    backend.set_default_dtype(np.float64)
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(solver_data.tiny_net_param(key, test_key, **(net_kwargs or {})))
    p.base_lr = 0.1
    p.lr_policy = "fixed"
    p.max_iter = 100
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(p, name).extend(value)
        else:
            setattr(p, name, value)
    if isinstance(cls_or_type, str):
        p.type = cls_or_type
        solver = get_solver(p)
    else:
        solver = cls_or_type(p)
    w, b = solver.net.params["ip"]
    w.set_values(W0)
    b.set_values(B0)
    return solver


def reference(rule, batches, iters, base_lr=float(np.float32(0.1)), momentum=0.0, momentum2=0.999,
              weight_decay=0.0, reg="L2", lr_mult=(1.0, 2.0), decay_mult=(1.0, 0.5),
              delta=1e-8, rms_decay=0.99, iter_size=1, clip=-1.0):
    """Independent float64 implementation of Caffe's update rules; returns the
    (W, b) after each iteration and the per-iteration losses."""
    params = [W0.copy(), B0.copy()]
    h = [np.zeros_like(q) for q in params]
    h2 = [np.zeros_like(q) for q in params]
    out, losses, k = [], [], 0
    for it in range(iters):
        g = [np.zeros_like(q) for q in params]
        loss = 0.0
        for _ in range(iter_size):
            gw, gb, l_ = grads(params[0], params[1], batches[k % len(batches)])
            k += 1
            g[0] += gw
            g[1] += gb
            loss += l_
        losses.append(loss / iter_size)
        # a param with lr_mult 0 gets no backward in Caffe: its diff stays 0
        g = [gi * (lr_mult[i] != 0) for i, gi in enumerate(g)]
        if clip >= 0:
            norm = math.sqrt(sum((gi ** 2).sum() for gi in g))
            if norm > clip:
                g = [gi * (clip / norm) for gi in g]
        for i in range(2):
            gi = g[i] / iter_size
            decay = weight_decay * decay_mult[i]
            if reg == "L2":
                gi = gi + decay * params[i]
            else:
                gi = gi + decay * np.sign(params[i])
            lr = base_lr * lr_mult[i]
            if rule == "SGD":
                h[i] = lr * gi + momentum * h[i]
                upd = h[i]
            elif rule == "Nesterov":
                prev = h[i]
                h[i] = lr * gi + momentum * h[i]
                upd = (1 + momentum) * h[i] - momentum * prev
            elif rule == "AdaGrad":
                h[i] = h[i] + gi ** 2
                upd = lr * gi / (np.sqrt(h[i]) + delta)
            elif rule == "RMSProp":
                h[i] = rms_decay * h[i] + (1 - rms_decay) * gi ** 2
                upd = lr * gi / (np.sqrt(h[i]) + delta)
            elif rule == "AdaDelta":
                h[i] = momentum * h[i] + (1 - momentum) * gi ** 2
                s = gi * np.sqrt((h2[i] + delta) / (h[i] + delta))
                h2[i] = momentum * h2[i] + (1 - momentum) * s ** 2
                upd = lr * s
            elif rule == "Adam":
                h[i] = momentum * h[i] + (1 - momentum) * gi
                h2[i] = momentum2 * h2[i] + (1 - momentum2) * gi ** 2
                t = it + 1
                corr = math.sqrt(1 - momentum2 ** t) / (1 - momentum ** t)
                upd = lr * corr * h[i] / (np.sqrt(h2[i]) + delta)
            params[i] = params[i] - upd
        out.append((params[0].copy(), params[1].copy()))
    return out, losses


F32 = lambda v: float(np.float32(v))  # noqa: E731  proto floats are float32


def params(solver):
    """(W, b) of the tiny net: copies on the host."""
    return tuple(backend.to_numpy(p.data).copy() for p in solver.net.params["ip"])


def run_and_compare(solver, expected, iters, rtol=1e-10):
    for it in range(iters):
        solver.step(1)
        w, b = params(solver)
        np.testing.assert_allclose(w, expected[it][0], rtol=rtol, atol=1e-12,
                                   err_msg="W after iteration %d" % it)
        np.testing.assert_allclose(b, expected[it][1], rtol=rtol, atol=1e-12,
                                   err_msg="b after iteration %d" % it)
