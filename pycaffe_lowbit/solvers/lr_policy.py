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

Two policies of ours (not in Caffe), for the QNN and weight-search seeds. With
t = floor(iter / stepsize) and T = max_iter / stepsize when stepsize > 0 (a
schedule per epoch: stepsize = iterations per epoch), else t = iter and
T = max_iter, and ``final_lr`` (SolverParameter field 5200):

  exp_decay  base_lr * (final_lr / base_lr) ^ (t / T)     (QNN: lr to 3e-7)
  cosine     final_lr + (base_lr - final_lr) * (1 + cos(pi * t / T)) / 2
"""
import ctypes
import ctypes.util
import logging
import math

import numpy as np

log = logging.getLogger("pycaffe_lowbit")

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid",
            "exp_decay", "cosine")


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
    pow(float, float) and exp(float) in float (libm's powf and expf, see
    ``_powf``)."""
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
        rate = base_lr * _powf(f(1) + gamma * f(iter), -power)
    elif policy == "multistep":
        _check_gamma(param)
        rate = float(base_lr) * math.pow(float(gamma), current_step)
    elif policy == "poly":
        _check(param.max_iter > 0, "lr_policy 'poly' needs max_iter > 0")
        rate = base_lr * _powf(f(1) - f(iter) / f(param.max_iter), power)
    elif policy == "sigmoid":
        _check_gamma(param)
        _check_stepsize(param)
        z = -gamma * (f(iter) - f(param.stepsize))
        rate = base_lr * (f(1) / (f(1) + _expf(z)))
    elif policy in ("exp_decay", "cosine"):
        rate = _annealed(param, iter)
    else:
        raise LearningRatePolicyError("Unknown learning rate policy: %s (known: %s)"
                                      % (policy, ", ".join(POLICIES)))
    return float(f(rate))


def _libm_float_functions():
    """C's ``powf`` and ``expf`` from the C library, as Caffe's float
    ``pow``/``exp`` call them; None where ctypes cannot find libm."""
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        powf, expf = libm.powf, libm.expf
    except (OSError, AttributeError):
        return None
    powf.restype, powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return powf, expf


_LIBM = _libm_float_functions()


def _powf(x, y):
    """``powf(x, y)`` of float32 scalars, as Caffe computes pow(float, float):
    the C library's own function (glibc's is within 0.82 ulp, not always
    correctly rounded), else the double power rounded once to float32.

    Not ``np.power``: on float32 NumPy dispatches a SIMD power by CPU (its
    AVX-512 one moved Caffe's 'inv' rate 0.000999401 to 0.0009994), so the
    rate would depend on the machine."""
    if _LIBM is not None:
        return np.float32(_LIBM[0](float(x), float(y)))
    return np.float32(math.pow(float(x), float(y)))


def _expf(x):
    """``expf(x)`` of a float32 scalar (see ``_powf``); +inf on overflow."""
    if _LIBM is not None:
        return np.float32(_LIBM[1](float(x)))
    try:
        value = math.exp(float(x))
    except OverflowError:
        value = math.inf
    with np.errstate(over="ignore"):
        return np.float32(value)


def _annealed(param, iter):
    """exp_decay and cosine (see the module docstring), in double, as a fraction
    t / T of the run."""
    policy = param.lr_policy
    _check(param.max_iter > 0, "lr_policy '%s' needs max_iter > 0" % policy)
    _check(param.stepsize >= 0, "lr_policy '%s' needs stepsize >= 0 (0: per iteration), "
           "got %d" % (policy, param.stepsize))
    base, final = float(np.float32(param.base_lr)), float(np.float32(param.final_lr))
    if param.stepsize:
        frac = (iter // param.stepsize) / (param.max_iter / param.stepsize)
    else:
        frac = iter / param.max_iter
    if policy == "cosine":
        return final + (base - final) * (1 + math.cos(math.pi * frac)) / 2
    _check(base > 0 and final > 0, "lr_policy 'exp_decay' needs base_lr > 0 and "
           "final_lr > 0, got base_lr %g, final_lr %g" % (base, final))
    return base * math.pow(final / base, frac)
