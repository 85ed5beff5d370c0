"""Solvers: each update rule against its closed form on a tiny float64 net
(on every backend of the ``xp`` fixture: ``kernels`` runs the fused update of
kernels/solver.cu), and Caffe's checks of the SolverParameter."""
import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver, AdaDeltaSolver, AdamSolver, SolverError, get_solver
from support import solver_data
from support.tiny_solver import W0, B0, make_batches, grads, tiny_solver, reference, F32, run_and_compare, params


# -- closed-form update rules ---------------------------------------------------------
RULES = [
    ("SGD", SGDSolver, dict(momentum=0.9, weight_decay=0.01)),
    ("Nesterov", NesterovSolver, dict(momentum=0.9, weight_decay=0.01)),
    ("AdaGrad", AdaGradSolver, dict(weight_decay=0.01, delta=1e-6)),
    ("RMSProp", RMSPropSolver, dict(weight_decay=0.01, rms_decay=0.9, delta=1e-6)),
    ("AdaDelta", AdaDeltaSolver, dict(momentum=0.95, weight_decay=0.01, delta=1e-6,
                                      base_lr=1.0)),
    ("Adam", AdamSolver, dict(momentum=0.9, momentum2=0.999, delta=1e-8, base_lr=0.01)),
]


@pytest.mark.parametrize("rule,cls,fields", RULES, ids=[r[0] for r in RULES])
def test_update_rule_closed_form(rule, cls, fields, xp):
    batches = make_batches("rule")
    solver = tiny_solver(rule, key="rule", **fields)
    assert type(solver) is cls and solver.type == rule
    ref = {k: F32(v) for k, v in fields.items()}
    expected, _ = reference(rule, batches, 6, **ref)
    run_and_compare(solver, expected, 6)
    n = len(solver.net.learnable_params)
    assert len(solver.history) == (2 * n if rule in ("AdaDelta", "Adam") else n)


@pytest.mark.parametrize("rule,cls,fields", RULES, ids=[r[0] for r in RULES])
def test_constructor_classes(rule, cls, fields):
    make_batches("rule")
    solver = tiny_solver(cls, key="rule", **fields)
    assert type(solver) is cls


def test_sgd_first_step_by_hand(xp):
    batches = make_batches("hand", n_batches=1)
    solver = tiny_solver("SGD", key="hand", momentum=0.9, base_lr=0.1)
    gw, gb, loss = grads(W0, B0, batches[0])
    solver.step(1)
    w, b = params(solver)
    np.testing.assert_allclose(w, W0 - F32(0.1) * gw, rtol=1e-12)
    np.testing.assert_allclose(b, B0 - 2 * F32(0.1) * gb, rtol=1e-12)   # lr_mult 2
    assert solver.smoothed_loss == pytest.approx(F32(loss), rel=1e-6)
    solver.step(1)
    gw2, _, _ = grads(W0 - F32(0.1) * gw, B0 - 2 * F32(0.1) * gb, batches[0])
    np.testing.assert_allclose(
        params(solver)[0], W0 - F32(0.1) * gw - (F32(0.1) * gw2 + F32(0.9) * F32(0.1) * gw), rtol=1e-10)


def test_adam_bias_correction_uses_iter(xp):
    """Adam's t is iter + 1: a restored iteration counter changes the step."""
    make_batches("adam", n_batches=1)
    a = tiny_solver("Adam", key="adam", momentum=0.9, momentum2=0.999, base_lr=0.01)
    b = tiny_solver("Adam", key="adam", momentum=0.9, momentum2=0.999, base_lr=0.01)
    b.iter = 10
    a.step(1)
    b.step(1)
    assert not np.allclose(params(a)[0], params(b)[0])


# -- Caffe's checks -----------------------------------------------------------------
@pytest.mark.parametrize("rule,fields,message", [
    ("AdaGrad", dict(momentum=0.9), "Momentum cannot be used with AdaGrad"),
    ("RMSProp", dict(momentum=0.9), "Momentum cannot be used with RMSProp"),
    ("RMSProp", dict(rms_decay=1.0), "rms_decay should lie between 0 and 1"),
    ("RMSProp", dict(rms_decay=-0.1), "rms_decay should lie between 0 and 1"),
    ("Adagrad", dict(), "Unknown solver type: Adagrad"),
    ("SGD", dict(average_loss=0), "average_loss"),
    ("SGD", dict(test_iter=[1]), "test_interval"),
    ("SGD", dict(test_iter=[1], test_interval=1, test_state=[caffe_pb2.NetState()] * 2),
     "test_state must be unspecified or specified once per test net"),
    ("SGD", dict(snapshot=10), "snapshot is specified but snapshot_prefix is not"),
])
def test_solver_checks(rule, fields, message):
    make_batches("chk", n_batches=1)
    state = fields.pop("test_state", None)
    if state is not None:
        with pytest.raises(SolverError, match=message):
            p = caffe_pb2.SolverParameter()
            p.net_param.CopyFrom(solver_data.tiny_net_param("chk"))
            p.test_iter.extend(fields["test_iter"])
            p.test_interval = fields["test_interval"]
            for s in state:
                p.test_state.add().CopyFrom(s)
            get_solver(p)
        return
    with pytest.raises(SolverError, match=message):
        tiny_solver(rule, key="chk", **fields)


def test_train_net_checks():
    make_batches("tn", n_batches=1)
    p = caffe_pb2.SolverParameter()
    with pytest.raises(SolverError, match="must specify a train net"):
        SGDSolver(p)
    p.net_param.CopyFrom(solver_data.tiny_net_param("tn"))
    p.train_net_param.CopyFrom(solver_data.tiny_net_param("tn"))
    with pytest.raises(SolverError, match="more than one"):
        SGDSolver(p)
    p.ClearField("net_param")
    p.test_iter.append(1)       # no generic net: test_iter must match the test nets
    with pytest.raises(SolverError, match="test_iter must be specified for each test"):
        SGDSolver(p)
    p.test_net_param.add().CopyFrom(solver_data.tiny_net_param("tn"))
    p.test_interval = 5
    s = SGDSolver(p)
    assert len(s.test_nets) == 1


def test_random_seed_makes_fillers_repeatable():
    make_batches("seed", n_batches=1)
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(solver_data.tiny_net_param("seed"))
    p.random_seed = 5
    a = SGDSolver(p).net.params["ip"][0].data.copy()
    backend.set_random_seed(99)
    b = SGDSolver(p).net.params["ip"][0].data.copy()
    np.testing.assert_array_equal(a, b)
