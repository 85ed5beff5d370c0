"""Categorical weight search: each weight W_j chooses among K values v by logits.

Logits a have shape W.shape + (K,). With Gumbel noise G = -log(-log U) scaled by
g (training only) and temperature tau:

    p = softmax((a + g G) / tau)                    over the last axis
    hard:  y = one-hot(argmax_k p)   soft:  y = p
    W = sum_k y_k v_k

The hard mode's gradient is the soft one (straight through the one-hot), so in
both modes, with dW = dL/dW and E = sum_k p_k v_k:

    dL/da_k = p_k dW (v_k - E) / tau

The temperature follows the seed's per-epoch schedule, in iterations:

    tau(iter) = max(tau_0 * rate ^ (iter // (iters_per_epoch * step)), tau_min)

Logits start at log(1/K) + 1e-5 (U - 0.5), U ~ U[0, 1) (the layers fill them
so). The value sets of the seed (json/valueset/), in its order (a logit index
names a value):

    1b      -1, 1
    po2-2b  -1, -0.5, 0.5, 1
    po2-3b  -0.25, -0.5, -1, -2, 2, 1, 0.5, 0.25
    po2-4b  -2^-4 ... -8, 8 ... 2^-4 (the same pattern)
    int-Nb  -2^(N-1), ..., 2^(N-1) - 1  (N = 1..8; the seed has 2, 3, 4)
"""
import math

import numpy as np

from ..core import backend
from ..kernels import quant as kq
from .activations import level_bits

VALUE_SETS = {
    "1b": (-1.0, 1.0),
    "po2-2b": (-1.0, -0.5, 0.5, 1.0),
    "po2-3b": (-0.25, -0.5, -1.0, -2.0, 2.0, 1.0, 0.5, 0.25),
    "po2-4b": (-0.0625, -0.125, -0.25, -0.5, -1.0, -2.0, -4.0, -8.0,
               8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625),
}


def named_value_set(name):
    """The values of a named set, or ValueError naming the known ones."""
    if name in VALUE_SETS:
        return VALUE_SETS[name]
    if name.startswith("int-") and name.endswith("b") and name[4:-1].isdigit():
        n = int(name[4:-1])
        if 1 <= n <= 8:
            return tuple(float(v) for v in range(-2 ** (n - 1), 2 ** (n - 1)))
    raise ValueError("unknown value set %r (known: %s, int-Nb for N = 1..8)"
                     % (name, ", ".join(VALUE_SETS)))


def temperature(init, rate, step_iters, minimum, iter):
    """tau = max(init * rate ^ (iter // step_iters), minimum), in double."""
    return max(init * math.pow(rate, iter // max(1, step_iters)), minimum)


class WeightSearch:
    """The value of W from logits and its gradient (see the module docstring)."""

    def __init__(self, values, hard=True, gumbel_scale=0.0):
        values = np.asarray(values, np.float64)
        if values.ndim != 1 or values.size < 2:
            raise ValueError("a value set needs at least 2 values, got %s" % list(values))
        if len(set(values.tolist())) != values.size:
            raise ValueError("the value set has repeated values: %s" % list(values))
        self.values = values
        self.hard = bool(hard)
        self.gumbel_scale = float(gumbel_scale)

    @property
    def precision(self):
        """Bits of a searched weight: those that index the K values."""
        return level_bits(self.values.size)

    def gumbel(self, a, noise=True):
        """G = -log(-log U) of a's shape, dtype and device, drawn on the host
        from ``backend.rng()``; None when ``noise`` is off or g = 0."""
        if not (noise and self.gumbel_scale):
            return None
        u = backend.rng().random(a.shape)
        g = -np.log(-np.log(np.clip(u, 1e-20, 1.0 - 1e-7)))
        return backend.to_device(g.astype(a.dtype), backend.get_array_module(a))

    def probabilities(self, a, tau, noise=True):
        """p = softmax((a + g G) / tau) over the last axis (G drawn when
        ``noise`` and g != 0)."""
        xp = backend.get_array_module(a)
        t = a.dtype.type
        z = a
        g = self.gumbel(a, noise)
        if g is not None:
            z = a + t(self.gumbel_scale) * g
        z = z / t(tau)
        z = z - z.max(axis=-1, keepdims=True)
        e = xp.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def hard_weight(self, a):
        """v[argmax a] (the exported weight; the hard forward without noise)."""
        xp = backend.get_array_module(a)
        v = xp.asarray(self.values.astype(a.dtype))
        return v[xp.argmax(a, axis=-1)]

    def forward(self, a, tau, hard=None, noise=True):
        """(W, p): W of a.shape[:-1]; p kept for ``backward``. On the GPU and
        under ``kernels.emulate()``: one kernel, one thread per weight."""
        xp = backend.get_array_module(a)
        hard = self.hard if hard is None else hard
        if kq.runs(a):
            return kq.search_forward(a, self.values, tau, self.gumbel(a, noise),
                                     self.gumbel_scale, hard)
        p = self.probabilities(a, tau, noise)
        v = xp.asarray(self.values.astype(a.dtype))
        if hard:
            return v[xp.argmax(p, axis=-1)], p
        return p @ v, p

    def backward(self, p, dw, tau, into=None):
        """dL/da = p (v - E_p[v]) dW / tau, of p's shape; added to ``into``
        (the logits' diff) when given, which is returned."""
        if into is not None and kq.runs(p, dw, into) and p.dtype == dw.dtype == into.dtype:
            return kq.search_backward(p, dw, self.values, tau, into)
        xp = backend.get_array_module(p)
        v = xp.asarray(self.values.astype(p.dtype))
        mean = p @ v
        da = p * (v - mean[..., None]) * (dw / p.dtype.type(tau))[..., None]
        if into is None:
            return da
        into += da
        return into
