"""Every solver file of the seeds (../shared/seeds/**/*solver*.prototxt) parses,
and its learning-rate schedule over 0..max_iter is the closed form of its
policy: at 0, at max_iter, on both sides of every step boundary, and at a few
hundred random iterations.

The closed forms below are written from Caffe's documentation of the
policies (caffe.proto), in float64, independently of ``solvers/lr_policy.py``
(which computes in float32 as Caffe does: hence the tolerance).
"""
import glob
import math
import os
import zlib

import numpy as np
import pytest

from pycaffe_lowbit.formats.text import read_solver_param
from pycaffe_lowbit.solvers import lr_policy
from support import paths

SEEDS = paths.SEEDS
SOLVER_FILES = sorted(glob.glob(os.path.join(SEEDS, "**", "*solver*.prototxt"), recursive=True))

pytestmark = pytest.mark.skipif(not SOLVER_FILES, reason="../shared/seeds not present")

CLOSED_FORMS = {
    "fixed": lambda p, it: p.base_lr,
    "step": lambda p, it: p.base_lr * p.gamma ** math.floor(it / p.stepsize),
    "exp": lambda p, it: p.base_lr * p.gamma ** it,
    "inv": lambda p, it: p.base_lr * (1.0 + p.gamma * it) ** (-p.power),
    "multistep": lambda p, it: p.base_lr * p.gamma ** sum(1 for s in p.stepvalue if it >= s),
    "poly": lambda p, it: p.base_lr * (1.0 - it / p.max_iter) ** p.power,
    "sigmoid": lambda p, it: p.base_lr / (1.0 + math.exp(-p.gamma * (it - p.stepsize))),
}


def boundaries(p):
    """The iterations where the policy changes its rate."""
    if p.lr_policy == "step":
        return list(range(p.stepsize, p.max_iter + 1, p.stepsize))
    if p.lr_policy == "multistep":
        return list(p.stepvalue)
    if p.lr_policy == "sigmoid":
        return [p.stepsize]
    return []


def sample(p, name):
    """0, max_iter, every boundary +-1 and 300 random iterations (seeded by
    the file's name), in increasing order."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    points = {0, p.max_iter}
    for b in boundaries(p):
        points.update((b - 1, b, b + 1))
    points.update(rng.integers(0, p.max_iter + 1, 300).tolist())
    return sorted(i for i in points if 0 <= i <= p.max_iter)


def our_rates(p, iterations):
    """lr_policy's rate at each of ``iterations`` (increasing), with the
    multistep position the solver would hold there. The solver advances it
    once per iteration, and it can only move at a stepvalue or on the
    iterations right after a move, so calling ``advance_step`` at those
    iterations and at the samples, in order, gives the solver's positions."""
    calls = set(iterations)
    if p.lr_policy == "multistep":
        calls.update(s + j for s in p.stepvalue for j in range(len(p.stepvalue) + 1)
                     if s + j <= p.max_iter)
    wanted, rates, step = set(iterations), {}, 0
    for it in sorted(calls):
        step = lr_policy.advance_step(p, it, step)
        if it in wanted:
            rates[it] = lr_policy.learning_rate(p, it, step)
    return np.array([rates[it] for it in iterations])


def _rel(path):
    return os.path.relpath(path, SEEDS)


@pytest.mark.parametrize("path", SOLVER_FILES, ids=_rel)
def test_seed_schedule_matches_closed_form(path):
    p = read_solver_param(path)
    assert p.lr_policy in CLOSED_FORMS, "%s: policy %r" % (_rel(path), p.lr_policy)
    assert p.max_iter > 0 and p.base_lr > 0
    iterations = sample(p, _rel(path))
    expected = np.array([CLOSED_FORMS[p.lr_policy](p, it) for it in iterations])
    ours = our_rates(p, iterations)
    # float32 arithmetic, as Caffe's: a few ulps of the rate, and for poly the
    # rounding of 1 - iter/max_iter near its end (an absolute ~6e-8 * base_lr).
    np.testing.assert_allclose(ours, expected, rtol=2e-6, atol=2e-7 * p.base_lr,
                               err_msg=_rel(path))


@pytest.mark.parametrize("policy,fields", [
    ("fixed", {}), ("step", dict(gamma=0.5, stepsize=7)), ("exp", dict(gamma=0.999)),
    ("inv", dict(gamma=1e-3, power=0.75)), ("multistep", dict(gamma=0.3, stepvalue=[5, 40, 41])),
    ("poly", dict(power=2.0)), ("sigmoid", dict(gamma=0.05, stepsize=60)),
])
def test_closed_forms_cover_every_policy(policy, fields):
    """The same comparison on a made-up schedule of each policy (the seeds use
    only fixed, step, inv, multistep and poly)."""
    from pycaffe_lowbit.proto import caffe_pb2
    p = caffe_pb2.SolverParameter(lr_policy=policy, base_lr=0.1, max_iter=100)
    for key, value in fields.items():
        if key == "stepvalue":
            p.stepvalue.extend(value)
        else:
            setattr(p, key, value)
    iterations = list(range(p.max_iter + 1))
    expected = [CLOSED_FORMS[policy](p, it) for it in iterations]
    np.testing.assert_allclose(our_rates(p, iterations), expected, rtol=2e-6, atol=2e-8)
