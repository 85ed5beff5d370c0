"""Caffe's learning-rate policies (SGDSolver::GetLearningRate).

With ``base_lr``, ``gamma``, ``power``, ``stepsize``, ``stepvalue`` and
``max_iter`` from the SolverParameter and ``iter`` the current iteration:

  fixed      base_lr
  step       base_lr * gamma ^ floor(iter / stepsize)
  exp        base_lr * gamma ^ iter
  inv        base_lr * (1 + gamma * iter) ^ (-power)
  multistep  base_lr * gamma ^ current_step, where current_step counts the
             ``stepvalue`` entries passed; like Caffe it advances by at most one
             per call (the solver calls once per iteration)
  poly       base_lr * (1 - iter / max_iter) ^ power
  sigmoid    base_lr / (1 + exp(-gamma * (iter - stepsize)))

Caffe's checks are kept: stepsize > 0 for step and sigmoid, gamma >= 0 for
step, exp, inv, multistep and sigmoid, and an unknown policy is an error.
"""
import logging
import math

import numpy as np

log = logging.getLogger("pycaffe_lowbit")

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


class LearningRatePolicyError(ValueError):
    """A SolverParameter whose lr policy Caffe rejects."""


def _check(condition, message):
    if not condition:
        raise LearningRatePolicyError(message)


def _check_gamma(param):
    _check(param.gamma >= 0, "lr_policy '%s' needs gamma >= 0, got %g"
           % (param.lr_policy, param.gamma))


def _check_stepsize(param):
    _check(param.stepsize > 0, "lr_policy '%s' needs stepsize > 0, got %d"
           % (param.lr_policy, param.stepsize))


def advance_step(param, iter, current_step=0):
    """The solver's ``current_step`` after this iteration's rate lookup:
    ``iter // stepsize`` for step, one more when ``iter`` reaches the next
    ``stepvalue`` for multistep (logging Caffe's "MultiStep Status" line),
    unchanged otherwise."""
    policy = param.lr_policy
    if policy == "step":
        _check_stepsize(param)
        return iter // param.stepsize
    if policy == "multistep":
        if current_step < len(param.stepvalue) and iter >= param.stepvalue[current_step]:
            current_step += 1
            log.info("MultiStep Status: Iteration %d, step = %d", iter, current_step)
    return current_step


def learning_rate(param, iter, current_step=0):
    """The learning rate at iteration ``iter`` (a float). ``current_step`` is
    only read by multistep (the solver keeps it, see ``advance_step``).

    The arithmetic follows Caffe's float (Dtype) expressions, so that the rate
    is the float32 value Caffe prints and uses: pow(float, int) in double,
    pow(float, float) and exp(float) in float."""
    f = np.float32
    policy = param.lr_policy
    base_lr = f(param.base_lr)
    gamma = f(param.gamma)
    power = f(param.power)
    if policy == "fixed":
        rate = base_lr
    elif policy == "step":
        _check_stepsize(param)
        _check_gamma(param)
        rate = float(base_lr) * math.pow(float(gamma), iter // param.stepsize)
    elif policy == "exp":
        _check_gamma(param)
        rate = float(base_lr) * math.pow(float(gamma), iter)
    elif policy == "inv":
        _check_gamma(param)
        rate = base_lr * np.power(f(1) + gamma * f(iter), -power)
    elif policy == "multistep":
        _check_gamma(param)
        rate = float(base_lr) * math.pow(float(gamma), current_step)
    elif policy == "poly":
        _check(param.max_iter > 0, "lr_policy 'poly' needs max_iter > 0")
        rate = base_lr * np.power(f(1) - f(iter) / f(param.max_iter), power)
    elif policy == "sigmoid":
        _check_gamma(param)
        _check_stepsize(param)
        z = -gamma * (f(iter) - f(param.stepsize))
        with np.errstate(over="ignore"):
            rate = base_lr * (f(1) / (f(1) + np.exp(z)))
    else:
        raise LearningRatePolicyError("Unknown learning rate policy: %s (known: %s)"
                                      % (policy, ", ".join(POLICIES)))
    return float(f(rate))
