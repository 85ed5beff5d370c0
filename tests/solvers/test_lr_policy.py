"""Learning-rate policies: Caffe's formulas, multistep stepping, checks, and the
rates printed by official Caffe in every golden solver run."""
import math
import os

import numpy as np
import pytest

from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import lr_policy
from pycaffe_lowbit.solvers.lr_policy import LearningRatePolicyError, learning_rate
from support import paths

GOLDEN = os.path.join(paths.GOLDEN, "solvers")
RUNS = ["sgd_inv", "nesterov_inv", "adagrad", "rmsprop", "adadelta", "adam", "sgd_step",
        "sgd_multistep", "sgd_poly", "sgd_exp", "sgd_sigmoid", "sgd_fixed",
        "sgd_iter_size2", "sgd_clip", "sgd_l1"]


def solver_param(**fields):
    p = caffe_pb2.SolverParameter()
    for key, value in fields.items():
        if key == "stepvalue":
            p.stepvalue.extend(value)
        else:
            setattr(p, key, value)
    return p


def rates(p, iters):
    """The rates a solver sees, advancing current_step as it does."""
    out, step = [], 0
    for it in range(iters):
        step = lr_policy.advance_step(p, it, step)
        out.append(learning_rate(p, it, step))
    return np.array(out)


F32 = lambda v: float(np.float32(v))  # noqa: E731  (proto floats are float32; Caffe computes in float)


def test_fixed():
    p = solver_param(lr_policy="fixed", base_lr=0.05)
    np.testing.assert_allclose(rates(p, 100), F32(0.05), rtol=0)


def test_step():
    p = solver_param(lr_policy="step", base_lr=0.1, gamma=0.5, stepsize=7)
    it = np.arange(200)
    np.testing.assert_allclose(rates(p, 200), F32(0.1) * 0.5 ** (it // 7), rtol=1e-6)


def test_exp():
    p = solver_param(lr_policy="exp", base_lr=0.1, gamma=0.99)
    it = np.arange(500)
    np.testing.assert_allclose(rates(p, 500), F32(0.1) * F32(0.99) ** it, rtol=1e-6)


def test_inv():
    p = solver_param(lr_policy="inv", base_lr=0.01, gamma=1e-4, power=0.75)
    it = np.arange(1000)
    np.testing.assert_allclose(rates(p, 1000),
                               F32(0.01) * (1 + F32(1e-4) * it) ** -0.75, rtol=1e-6)


def test_multistep():
    p = solver_param(lr_policy="multistep", base_lr=1.0, gamma=0.1, stepvalue=[5, 12, 30])
    it = np.arange(60)
    expected = F32(0.1) ** ((it >= 5).astype(int) + (it >= 12) + (it >= 30))
    np.testing.assert_allclose(rates(p, 60), expected, rtol=1e-6)


def test_multistep_advances_one_step_per_call():
    # Caffe moves current_step by at most one per call: resuming at iteration 20
    # with current_step 0 catches up one step per iteration.
    p = solver_param(lr_policy="multistep", base_lr=1.0, gamma=0.5, stepvalue=[2, 3, 4])
    assert lr_policy.advance_step(p, 20, 0) == 1
    assert lr_policy.advance_step(p, 21, 1) == 2
    assert lr_policy.advance_step(p, 22, 3) == 3


def test_poly():
    p = solver_param(lr_policy="poly", base_lr=0.01, power=0.5, max_iter=100)
    it = np.arange(101)
    np.testing.assert_allclose(rates(p, 101), F32(0.01) * (1 - it / 100.0) ** 0.5,
                               rtol=1e-6, atol=1e-12)


def test_sigmoid():
    p = solver_param(lr_policy="sigmoid", base_lr=0.01, gamma=0.2, stepsize=20)
    it = np.arange(100)
    expected = F32(0.01) / (1 + np.exp(-F32(0.2) * (it - 20.0)))
    np.testing.assert_allclose(rates(p, 100), expected, rtol=1e-6)


def test_sigmoid_far_past_step_does_not_overflow():
    p = solver_param(lr_policy="sigmoid", base_lr=0.01, gamma=5.0, stepsize=1000)
    assert learning_rate(p, 0) == 0.0


@pytest.mark.parametrize("policy,fields", [
    ("sigmoid", dict(gamma=-0.1, stepsize=10)),
    ("sigmoid", dict(gamma=0.1, stepsize=0)),
    ("step", dict(gamma=0.5, stepsize=0)),
    ("step", dict(gamma=-0.5, stepsize=10)),
    ("exp", dict(gamma=-0.9)),
    ("inv", dict(gamma=-1e-4, power=0.75)),
    ("multistep", dict(gamma=-0.5, stepvalue=[1])),
])
def test_caffe_checks(policy, fields):
    p = solver_param(lr_policy=policy, base_lr=0.01, **fields)
    with pytest.raises(LearningRatePolicyError):
        rates(p, 3)


def test_unknown_policy():
    with pytest.raises(LearningRatePolicyError, match="Unknown learning rate policy: halfcos"):
        learning_rate(solver_param(lr_policy="halfcos", base_lr=0.1), 0)
    with pytest.raises(LearningRatePolicyError, match="Unknown learning rate policy"):
        learning_rate(solver_param(base_lr=0.1), 0)


@pytest.mark.parametrize("run", RUNS)
def test_golden_rates(run):
    """Every 'Iteration k, lr = ...' that official Caffe printed, to its 6 digits."""
    from pycaffe_lowbit.formats import text
    p = text.read_solver_param(os.path.join(GOLDEN, run + ".solver.prototxt"))
    golden = np.load(os.path.join(GOLDEN, run + ".npz"))
    ours = rates(p, int(golden["log_iter"].max()) + 1)
    for it, lr in zip(golden["log_iter"], golden["log_lr"]):
        assert float("%g" % np.float32(ours[it])) == pytest.approx(float(lr), rel=1e-9,
                                                                   abs=0), (run, it)
        assert math.isclose(ours[it], lr, rel_tol=5e-6)


def test_float_power_is_cs_powf_whatever_the_cpu():
    """inv/poly/sigmoid use C's powf/expf (what Caffe's float pow/exp call),
    not NumPy's float32 SIMD loops, which differ by CPU: the issue's case is
    the correctly rounded 0.99940044 (AVX-512 np.power: 0.9994004)."""

    f = np.float32
    assert lr_policy._powf(f(1.0008), f(-0.75)) == f(0.99940044)
    p = solver_param(base_lr=0.001, lr_policy="inv", gamma=0.0001, power=0.75)
    assert learning_rate(p, 8) == float(f(0.001) * f(0.99940044))


def test_float_power_fallback_without_libm_is_within_an_ulp(monkeypatch):
    """Where ctypes finds no C library, the double result rounded once to
    float32 stands in: at most 1 ulp from powf/expf (equal in all but ~0.05 %
    of random cases)."""

    rs = np.random.RandomState(0)
    x = rs.uniform(0.5, 2, 500).astype(np.float32)
    y = rs.uniform(-3, 3, 500).astype(np.float32)
    libm = [(lr_policy._powf(a, b), lr_policy._expf(b)) for a, b in zip(x, y)]
    monkeypatch.setattr(lr_policy, "_LIBM", None)
    for (p, e), a, b in zip(libm, x, y):
        assert abs(int(lr_policy._powf(a, b).view(np.int32)) - int(p.view(np.int32))) <= 1
        assert abs(int(lr_policy._expf(b).view(np.int32)) - int(e.view(np.int32))) <= 1
    assert lr_policy._expf(np.float32(200)) == np.inf
