"""The update of a solver step, as Caffe's SGDSolver::ApplyUpdate.

``apply_update()`` is SGDSolver::ApplyUpdate: rate from the lr policy (logged at
display iterations), gradient clipping to a global L2 norm ``clip_gradients``,
then per learnable param i: diff /= iter_size; regularization with
local_decay = weight_decay * decay_mult_i (L2: diff += local_decay * data,
L1: diff += local_decay * sign(data)); ``compute_update_value(i, rate)`` (the
subclass's rule, with local_rate = rate * lr_mult_i, writing the step into the
diff); finally data -= diff for every learnable param.

On the GPU and under ``kernels.emulate()`` a built-in rule runs all of this as
one fused kernel over every param (``fused.py``), with the same results.

With ``nan_effect`` other than "none" (``divergence.py``), the update values
are checked before they are applied: a non-finite one stops training with the
weights as they were (the fused kernel then only writes the values, and
``update_params`` checks and applies them).
"""
import logging

import numpy as np

from . import divergence, fused, lr_policy
from .errors import SolverError
from .testing import _g

log = logging.getLogger("pycaffe_lowbit")


_STEPS = ("clip_gradients", "normalize", "regularize", "local_rate", "update_params")


class ParamUpdate:
    """Mixin of ``Solver``: the rate, clipping, normalisation, regularisation,
    the rule's ``compute_update_value`` (subclasses) and data -= diff.

    A rule class that has a fused kernel (``kernels/solver.cu``) names it in
    ``fused_rule`` beside its ``compute_update_value`` and gives the kernel's
    inputs: ``fused_constants()`` (its scalars), ``fused_histories()`` and
    ``fused_rates(rate)`` when they differ from the defaults here."""

    fused_rule = None
    nan_effect = "none"     # the Solver's: "stop" | "snapshot" | "none" (divergence.py)

    def get_learning_rate(self):
        """The current rate; advances ``current_step`` (step, multistep)."""
        self.current_step = lr_policy.advance_step(self.param, self.iter, self.current_step)
        return lr_policy.learning_rate(self.param, self.iter, self.current_step)

    def apply_update(self):
        """SGDSolver::ApplyUpdate (see the module docstring)."""
        rate = self.get_learning_rate()
        p = self.param
        if p.display and self.iter % p.display == 0:
            log.info("Iteration %d, lr = %s", self.iter, _g(np.float32(rate)))
        if self._fused():
            checked = self.nan_effect != "none"
            fused.apply_update(self, rate, apply=not checked)
            if checked:
                self.update_params()
            return
        self.clip_gradients()
        for i in range(len(self.net.learnable_params)):
            self.normalize(i)
            self.regularize(i)
            self.compute_update_value(i, rate)
        self.update_params()

    def _fused(self):
        """Whether this update runs fused: the class giving ``compute_update_value``
        names a kernel, no step is overridden, the arrays suit the kernels."""
        owner = next(k for k in type(self).__mro__ if "compute_update_value" in vars(k))
        if vars(owner).get("fused_rule") is None:
            return False
        if any(getattr(type(self), step) is not getattr(ParamUpdate, step) for step in _STEPS):
            return False
        return fused.usable(self)

    def fused_histories(self):
        """The history lists the fused kernel updates (one per param each)."""
        return [self.history[:len(self.net.learnable_params)]]

    def fused_rates(self, rate):
        """The step's rate per param, as ``compute_update_value`` uses it."""
        return [self.local_rate(i, rate) for i in range(len(self.net.learnable_params))]

    def fused_constants(self):
        return ()

    def clip_scale(self, sum_of_squares):
        """Caffe's ClipGradients test: with ``clip_gradients`` >= 0 and the L2 norm
        of all diffs sqrt(``sum_of_squares()``) above it, clip / norm (logged);
        else None."""
        clip = self.param.clip_gradients
        if clip < 0:
            return None
        l2norm = float(np.sqrt(sum_of_squares()))
        if l2norm <= clip:
            return None
        scale = clip / l2norm
        log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by "
                 "scale factor %s", _g(np.float32(l2norm)), _g(np.float32(clip)),
                 _g(np.float32(scale)))
        return scale

    def _sum_of_squares(self):
        sumsq = 0.0
        for blob in self.net.learnable_params:
            d = blob.diff
            sumsq += float((d.astype(np.float64) ** 2).sum()) if d.dtype == np.float32 \
                else float((d * d).sum())
        return sumsq

    def clip_gradients(self):
        scale = self.clip_scale(self._sum_of_squares)
        if scale is not None:
            for blob in self.net.learnable_params:
                blob.diff *= blob.dtype.type(scale)

    def normalize(self, param_id):
        if self.param.iter_size == 1:
            return
        blob = self.net.learnable_params[param_id]
        blob.diff *= blob.dtype.type(1.0 / self.param.iter_size)

    def regularize(self, param_id):
        blob = self.net.learnable_params[param_id]
        local_decay = self.param.weight_decay * self.net.params_weight_decay[param_id]
        if not local_decay:
            return
        kind = self.param.regularization_type
        decay = blob.dtype.type(local_decay)
        if kind == "L2":
            blob.diff += decay * blob.data
        elif kind == "L1":
            blob.diff += decay * blob.xp.sign(blob.data)
        else:
            raise SolverError("Unknown regularization type: %s (known: L2, L1)" % kind)

    def local_rate(self, param_id, rate):
        return rate * self.net.params_lr[param_id]

    def compute_update_value(self, param_id, rate):
        raise NotImplementedError

    def update_params(self):
        """Net::Update: data -= diff for every learnable param (in place, so
        every net sharing the arrays sees it); then, for a param whose ParamSpec
        has ``clip_data`` c > 0 (ours, off by default), data = clip(data, -c, c).
        Not applied when an update value is not finite and ``nan_effect`` asks
        for the check (``divergence``)."""
        if self.nan_effect != "none":
            reason = divergence.check_update(self)
            if reason:
                divergence.diverged(self, reason)
                return
        for blob, clip in zip(self.net.learnable_params, self.net.params_clip_data):
            blob.data -= blob.diff
            if clip > 0:
                c = blob.dtype.type(clip)
                blob.xp.clip(blob.data, -c, c, out=blob.data)
