"""Our training options for QNN and weight search (off by default): the
exp_decay and cosine lr policies, ParamSpec clip_data / glorot_lr_scale, the
solver passing its iteration to the net, and Caffe's HingeLoss (L2) as the
seed's squared hinge."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import SGDSolver
from pycaffe_lowbit.solvers.lr_policy import LearningRatePolicyError, learning_rate
from support.helpers import build_layer


def _solver_param(text):
    return text_format.Parse(text, caffe_pb2.SolverParameter())


def test_exp_decay_per_epoch_matches_qnn():
    # QNN: lr *= (lr_fin / lr_start)^(1 / epochs) after every epoch
    p = _solver_param("lr_policy: 'exp_decay' base_lr: 0.001 final_lr: 3e-7 "
                      "max_iter: 50 stepsize: 10")
    base, fin = float(np.float32(0.001)), float(np.float32(3e-7))
    decay = (fin / base) ** (1 / 5)
    for it in range(50):
        assert learning_rate(p, it) == pytest.approx(base * decay ** (it // 10), rel=1e-6)
    assert learning_rate(p, 50) == pytest.approx(fin, rel=1e-6)
    p.stepsize = 0                                   # per iteration
    assert learning_rate(p, 25) == pytest.approx(base * (fin / base) ** 0.5, rel=1e-6)
    p.final_lr = 0
    with pytest.raises(LearningRatePolicyError, match="final_lr > 0"):
        learning_rate(p, 1)


def test_cosine_matches_torch_cosine_annealing():
    p = _solver_param("lr_policy: 'cosine' base_lr: 0.1 final_lr: 0.001 max_iter: 200")
    base, eta = float(np.float32(0.1)), float(np.float32(0.001))
    for it in (0, 1, 50, 100, 199, 200):
        expect = eta + (base - eta) * (1 + math.cos(math.pi * it / 200)) / 2
        assert learning_rate(p, it) == pytest.approx(expect, rel=1e-6)
    p.stepsize = 20                                  # per epoch of 20 iterations: T = 10
    assert learning_rate(p, 39) == pytest.approx(
        eta + (base - eta) * (1 + math.cos(math.pi * 1 / 10)) / 2, rel=1e-6)
    p.max_iter = 0
    with pytest.raises(LearningRatePolicyError, match="needs max_iter > 0"):
        learning_rate(p, 1)


NET = """
name: 'tiny'
layer { name: 'data' type: 'DummyData' top: 'data' top: 'target'
  dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
                     data_filler { type: 'gaussian' } data_filler { type: 'constant' value: 5 } } }
layer { name: 'ip' type: 'InnerProduct' bottom: 'data' top: 'ip'
  param { %s } param { lr_mult: 2 }
  inner_product_param { num_output: 2 weight_filler { type: 'gaussian' std: 0.01 } } }
layer { name: 'loss' type: 'EuclideanLoss' bottom: 'ip' bottom: 'target' top: 'loss' }
"""


def _solver(spec):
    p = _solver_param("base_lr: 0.5 lr_policy: 'fixed' max_iter: 3 display: 0 "
                      "random_seed: 3")
    text_format.Parse(NET % spec, p.net_param)
    return SGDSolver(p)


def test_clip_data_after_every_update_and_glorot_scale():
    plain = _solver("")
    assert plain.net.params_clip_data == [0.0, 0.0]
    assert plain.net.params_lr == [1.0, 2.0]
    s = _solver("clip_data: 0.05 glorot_lr_scale: true")
    # weight (2, 3): fan_in + fan_out = 5
    assert s.net.params_lr[0] == pytest.approx(1 / math.sqrt(1.5 / 5))
    assert s.net.params_lr[1] == 2.0
    s.step(1)
    w = s.net.params["ip"][0].data
    assert np.abs(w).max() == pytest.approx(0.05)     # the big step was clipped
    assert np.abs(s.net.params["ip"][1].data).max() > 0.05   # the bias is not


def test_solver_passes_its_iteration_to_the_layers():
    s = _solver("")
    seen = []
    s.net.layers[1].set_iteration = seen.append      # the net calls a layer's hook
    s.step(3)
    assert seen == [0, 1, 2]


def test_caffe_l2_hinge_is_the_seeds_squared_hinge():
    # Caffe's HingeLoss with norm L2: sum_ij max(0, 1 - t_ij x_ij)^2 / N with
    # t = +1 for the label, -1 elsewhere. The seed: mean over N * D of the
    # same terms, so loss_weight 1/D gives its value.
    x = np.random.default_rng(0).normal(size=(5, 4))
    label = np.array([0, 3, 1, 1, 2], float)
    layer, bottom, top = build_layer("name: 'h' type: 'HingeLoss' hinge_loss_param "
                                     "{ norm: L2 }", [x, label])
    layer.forward(bottom, top)
    t = -np.ones_like(x)
    t[np.arange(5), label.astype(int)] = 1
    seed = np.mean(np.maximum(0, 1 - t * x) ** 2)
    assert float(top[0].data) == pytest.approx(seed * 4, rel=1e-12)
