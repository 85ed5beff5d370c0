"""Adaptive update rules: AdaGrad, RMSProp, AdaDelta, Adam (Caffe's solvers).

g is the (clipped, normalized, regularized) gradient, lr = rate * lr_mult,
eps = ``delta``; the update is written into the param diff (data -= diff).

  AdaGrad:   h += g^2;                               update = lr * g / (sqrt(h) + eps)
  RMSProp:   h = rd * h + (1 - rd) * g^2 (rd = rms_decay);
             update = lr * g / (sqrt(h) + eps)
  AdaDelta:  h = mu * h + (1 - mu) * g^2 (mu = momentum);
             s = g * sqrt((h2 + eps) / (h + eps));
             h2 = mu * h2 + (1 - mu) * s^2;          update = lr * s
  Adam:      m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g^2
             (b1 = momentum, b2 = momentum2), t = iter + 1;
             update = lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)

AdaDelta and Adam keep a second history list after the first (``history[N + i]``),
Caffe's history_ order. Caffe's checks: AdaGrad and RMSProp refuse momentum != 0,
RMSProp needs 0 <= rms_decay < 1.
"""
import math

from .base import Solver
from .errors import _check


class AdaGradSolver(Solver):
    type = "AdaGrad"
    fused_rule = "adagrad"

    def fused_constants(self):
        return (self.param.delta,)

    def pre_solve(self):
        _check(self.param.momentum == 0, "Momentum cannot be used with AdaGrad.")
        super().pre_solve()

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        xp, t = blob.xp, blob.dtype.type
        g = blob.diff
        hist = self.history[param_id]
        hist.data += g * g
        local_rate = t(self.local_rate(param_id, rate))
        blob.diff[...] = local_rate * (g / (xp.sqrt(hist.data) + t(self.param.delta)))


class RMSPropSolver(Solver):
    type = "RMSProp"
    fused_rule = "rmsprop"

    def fused_constants(self):
        return (self.param.rms_decay, self.param.delta)

    def pre_solve(self):
        _check(self.param.momentum == 0, "Momentum cannot be used with RMSProp.")
        _check(self.param.rms_decay >= 0, "rms_decay should lie between 0 and 1.")
        _check(self.param.rms_decay < 1, "rms_decay should lie between 0 and 1.")
        super().pre_solve()

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        xp, t = blob.xp, blob.dtype.type
        g = blob.diff
        rms_decay = t(self.param.rms_decay)
        hist = self.history[param_id]
        hist.data[...] = (t(1) - rms_decay) * (g * g) + rms_decay * hist.data
        local_rate = t(self.local_rate(param_id, rate))
        blob.diff[...] = local_rate * (g / (xp.sqrt(hist.data) + t(self.param.delta)))


class _TwoHistorySolver(Solver):
    """A rule with two history blobs per param: Caffe keeps the second N after
    the first N in ``history_``, and so in the .solverstate."""

    def pre_solve(self):
        super().pre_solve()
        self.history += [self._zeros_like(p) for p in self.net.learnable_params]

    def histories(self, param_id):
        """(first, second) history blobs of learnable param ``param_id``."""
        n = len(self.net.learnable_params)
        return self.history[param_id], self.history[n + param_id]

    def fused_histories(self):
        n = len(self.net.learnable_params)
        return [self.history[:n], self.history[n:2 * n]]


class AdaDeltaSolver(_TwoHistorySolver):
    type = "AdaDelta"
    fused_rule = "adadelta"

    def fused_constants(self):
        return (self.param.momentum, self.param.delta)

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        xp, t = blob.xp, blob.dtype.type
        g = blob.diff
        momentum = t(self.param.momentum)
        delta = t(self.param.delta)
        grad_hist, update_hist = self.histories(param_id)
        grad_hist.data[...] = (t(1) - momentum) * (g * g) + momentum * grad_hist.data
        step = g * xp.sqrt((update_hist.data + delta) / (grad_hist.data + delta))
        update_hist.data[...] = (t(1) - momentum) * (step * step) + momentum * update_hist.data
        local_rate = t(self.local_rate(param_id, rate))
        blob.diff[...] = local_rate * step


class AdamSolver(_TwoHistorySolver):
    type = "Adam"
    fused_rule = "adam"

    def correction(self, t):
        """sqrt(1 - b2^t) / (1 - b1^t) at t = iter + 1, with b1, b2 in dtype ``t``."""
        step_t = self.iter + 1
        beta1, beta2 = float(t(self.param.momentum)), float(t(self.param.momentum2))
        return math.sqrt(1.0 - math.pow(beta2, step_t)) / (1.0 - math.pow(beta1, step_t))

    def fused_constants(self):
        return (self.param.momentum, self.param.momentum2, self.param.delta)

    def fused_rates(self, rate):
        t = self.net.learnable_params[0].dtype.type
        correction = self.correction(t)
        return [r * correction for r in super().fused_rates(rate)]

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        xp, t = blob.xp, blob.dtype.type
        g = blob.diff
        beta1 = t(self.param.momentum)
        beta2 = t(self.param.momentum2)
        m, v = self.histories(param_id)
        correction = self.correction(t)
        m.data[...] = (t(1) - beta1) * g + beta1 * m.data
        v.data[...] = (t(1) - beta2) * (g * g) + beta2 * v.data
        local_rate = t(self.local_rate(param_id, rate) * correction)
        blob.diff[...] = local_rate * (m.data / (xp.sqrt(v.data) + t(self.param.delta)))
