"""Property-based tests of the solver fields and the lr policies (Hypothesis).

* lr policies: random policy and fields; the rates a solver sees over the run
  (``advance_step`` then ``learning_rate``, as each iteration does) equal the
  closed forms of the policy, or the policy is refused with a
  ``LearningRatePolicyError`` naming a field.
* solver fields: random rule (SGD ... Adam) and fields (momentum, momentum2,
  delta, rms_decay, weight_decay, regularization_type, iter_size,
  clip_gradients, average_loss, lr_mult/decay_mult) on the tiny float64 net;
  the weights after a few iterations equal ``tiny_solver.reference`` (the
  independent closed forms of Caffe's rules), or a ``SolverError`` names a field.

Profiles: ``support/hypothesis_profiles.py``.
"""
import math
import re

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
pytestmark = pytest.mark.property

from hypothesis import event, given, strategies as st  # noqa: E402

from pycaffe_lowbit.proto import caffe_pb2  # noqa: E402
from pycaffe_lowbit.solvers import SolverError  # noqa: E402
from pycaffe_lowbit.solvers import lr_policy  # noqa: E402
from pycaffe_lowbit.solvers.lr_policy import LearningRatePolicyError  # noqa: E402
from support.tiny_solver import F32, make_batches, reference, tiny_solver  # noqa: E402

POLICIES = ["fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid", "exp_decay",
            "cosine", "nope"]


def names_a_field(message, param):
    """The message names a field set in ``param`` (``rms_decay`` or "rms decay")
    or the policy/solver type."""
    text = message.lower()
    words = set(re.findall(r"[a-z_0-9]+", text))
    fields = {f.name for f, _ in param.ListFields()} | {"lr_policy", "type", "policy"}
    return any(f in words or f.replace("_", " ") in text for f in fields)


# -- lr policies -----------------------------------------------------------------

@st.composite
def policies(draw):
    p = caffe_pb2.SolverParameter(
        lr_policy=draw(st.sampled_from(POLICIES)),
        base_lr=draw(st.sampled_from([0.1, 0.01, 1.0, 0.0, 3e-4])),
        gamma=draw(st.sampled_from([0.1, 0.5, 0.99, 1e-4, 0.0, -0.1, 2.0])),
        power=draw(st.sampled_from([0.75, 1.0, 2.0, 0.5, 0.0])),
        stepsize=draw(st.integers(0, 30)),
        max_iter=draw(st.integers(0, 120)),
        final_lr=draw(st.sampled_from([1e-4, 0.0, 0.05])))
    steps = sorted(set(draw(st.lists(st.integers(0, 120), max_size=4))))
    p.stepvalue.extend(steps)
    return p


def closed_form(p, it):
    """The rate at iteration ``it`` by the policies' formulas (float64)."""
    base, gamma, power = F32(p.base_lr), F32(p.gamma), F32(p.power)
    policy = p.lr_policy
    if policy == "fixed":
        return base
    if policy == "step":
        return base * gamma ** (it // p.stepsize)
    if policy == "exp":
        return base * gamma ** it
    if policy == "inv":
        return base * (1 + gamma * it) ** -power
    if policy == "multistep":    # strictly increasing stepvalues: the count passed
        return base * gamma ** sum(1 for v in p.stepvalue if it >= v)
    if policy == "poly":
        return base * (1 - it / p.max_iter) ** power
    if policy == "sigmoid":
        z = -gamma * (it - p.stepsize)
        return 0.0 if z > 700 else base / (1 + math.exp(z))
    final = F32(p.final_lr)
    t, big_t = (it // p.stepsize, p.max_iter / p.stepsize) if p.stepsize else (it, p.max_iter)
    if policy == "cosine":
        return final + (base - final) * (1 + math.cos(math.pi * t / big_t)) / 2
    return base * (final / base) ** (t / big_t)            # exp_decay


@given(p=policies())
def test_lr_policy_property(p):
    iters = max(p.max_iter, 1) if p.lr_policy in ("poly", "exp_decay", "cosine") else 60
    rates, step = [], 0
    try:
        for it in range(iters):
            step = lr_policy.advance_step(p, it, step)
            rates.append(lr_policy.learning_rate(p, it, step))
    except LearningRatePolicyError as exc:
        assert names_a_field(str(exc), p), str(exc)
        event("refused")
        return
    expected = [closed_form(p, it) for it in range(iters)]
    # Caffe's float32 arithmetic: poly's 1 - it / max_iter cancels near the end
    rtol = 2e-6 + (2e-7 * p.max_iter * max(F32(p.power), 1) if p.lr_policy == "poly" else 0)
    np.testing.assert_allclose(rates, expected, rtol=rtol, atol=1e-37,
                               err_msg=str(p).replace("\n", " "))
    event("ok")


# -- solver fields -----------------------------------------------------------------

RULES = ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"]


@st.composite
def solver_fields(draw):
    rule = draw(st.sampled_from(RULES))
    fields = dict(
        base_lr=draw(st.sampled_from([0.1, 0.01, 1.0])),
        momentum=draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])),
        weight_decay=draw(st.sampled_from([0.0, 0.01, 0.1])),
        regularization_type=draw(st.sampled_from(["L2", "L1", "L3"])),
        iter_size=draw(st.sampled_from([1, 1, 2, 3, 0])),
        clip_gradients=draw(st.sampled_from([-1.0, -1.0, 0.5, 5.0])),
        average_loss=draw(st.sampled_from([1, 1, 2, 0])),
        delta=draw(st.sampled_from([1e-8, 1e-6, 0.1])))
    if rule == "RMSProp":
        fields["rms_decay"] = draw(st.sampled_from([0.9, 0.99, 0.0, 1.0, -0.5]))
    if rule == "Adam":
        fields["momentum2"] = draw(st.sampled_from([0.999, 0.9, 0.5]))
    net = dict(lr_w=draw(st.sampled_from([1.0, 0.0, 2.0])), lr_b=draw(st.sampled_from([2.0, 1.0])),
               decay_w=draw(st.sampled_from([1.0, 0.0])), decay_b=draw(st.sampled_from([0.5, 1.0])))
    return rule, fields, net


@given(drawn=solver_fields())
def test_solver_fields_property(drawn):
    rule, fields, net = drawn
    batches = make_batches("property", n_batches=4)
    iters = 3
    try:
        solver = tiny_solver(rule, key="property", net_kwargs=net, **fields)
        solver.step(iters)
    except SolverError as exc:
        assert names_a_field(str(exc), solver_param(rule, fields)), str(exc)
        event("refused")
        return
    ref = {k: F32(v) for k, v in fields.items()
           if k in ("base_lr", "momentum", "momentum2", "weight_decay", "delta", "rms_decay")}
    expected, _ = reference(rule, batches, iters, reg=fields["regularization_type"],
                            lr_mult=(net["lr_w"], net["lr_b"]),
                            decay_mult=(net["decay_w"], net["decay_b"]),
                            iter_size=fields["iter_size"], clip=F32(fields["clip_gradients"]),
                            **ref)
    w, b = solver.net.params["ip"]
    np.testing.assert_allclose(w.data, expected[-1][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.data, expected[-1][1], rtol=1e-9, atol=1e-12)
    event("ok")


def solver_param(rule, fields):
    p = caffe_pb2.SolverParameter(type=rule)
    for key, value in fields.items():
        setattr(p, key, value)
    return p
