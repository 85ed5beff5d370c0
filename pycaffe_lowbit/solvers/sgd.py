"""SGD and Nesterov update rules (Caffe's SGDSolver / NesterovSolver).

With g the (clipped, normalized, regularized) gradient, lr = rate * lr_mult,
mu = ``momentum`` and h the history (one blob per learnable param):

  SGD:       h <- lr * g + mu * h;            update = h
  Nesterov:  h_prev = h; h <- lr * g + mu * h; update = (1 + mu) * h - mu * h_prev

The update is written into the param diff; the solver then does data -= diff.
``fused_rule``: the rule's kernel in kernels/solver.cu (see update.py).
"""
from .base import Solver


class SGDSolver(Solver):
    type = "SGD"
    fused_rule = "sgd"

    def fused_constants(self):
        return (self.param.momentum,)

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        t = blob.dtype.type
        momentum = t(self.param.momentum)
        local_rate = t(self.local_rate(param_id, rate))
        hist = self.history[param_id]
        hist.data[...] = local_rate * blob.diff + momentum * hist.data
        blob.diff[...] = hist.data


class NesterovSolver(SGDSolver):
    type = "Nesterov"
    fused_rule = "nesterov"

    def compute_update_value(self, param_id, rate):
        blob = self.net.learnable_params[param_id]
        t = blob.dtype.type
        momentum = t(self.param.momentum)
        local_rate = t(self.local_rate(param_id, rate))
        hist = self.history[param_id]
        previous = hist.data.copy()
        hist.data[...] = local_rate * blob.diff + momentum * hist.data
        blob.diff[...] = (t(1) + momentum) * hist.data - momentum * previous
