"""QNN quantizers (Moons et al.; BinaryNet at nb = 0), as the seed computes them.

With hs(x) = clip((x + 1) / 2, 0, 1) (hard sigmoid) and round() half away from
zero (C's round, which the seed's Theano op calls):

Activations, ``QNNActivation(nb, nonlinearity)``, elementwise, any shape:

    v = 2 round(hs(x) 2^nb) / 2^nb - 1
    hardtanh   y = clip(v, -1, 1)                  levels -1, -1 + 2^(1-nb), ..., 1
    relu       y = clip(v, 0, 1 - 2^(1 - nb))      levels 0, 2^(1-nb), ...  (nb >= 1)
    nb = 0 with hardtanh is BinaryNet's sign: y = +1 if x >= 0 else -1.

    STE: dx = dy * [|x| <= 1] * [lo <= v <= hi]  (round passes the gradient, the
    hard sigmoid's 1/2 cancels the 2; a clip passes it on its closed interval)

Weights, ``QNNWeights(nb, symmetric)``, per layer (whole blob):

    f = floor(log2(1 / max|W|)),  s = 2^(nb - 1 + f)
    Q = clip(round(W s), -2^(nb-1), 2^(nb-1) - 1) / s     (upper 2^(nb-1) if symmetric)
    nb = 0: Q = 2 round(hs(W)) - 1 = +1 if W >= 0 else -1
    max|W| = 0 gives Q = 0.  STE: dW = dQ (the latent W is clipped to [-1, 1]
    by the solver, ParamSpec.clip_data).

Levels and bits (``levels``, ``precision``), counted from these formulas: the
hardtanh activation has 2^nb + 1 levels (nb + 1 bits for nb >= 1: -1 and +1
are both reached), relu 2^(nb-1) (nb - 1 bits, at least 1); nb-bit weights
2^nb values (nb bits), 2^nb + 1 when symmetric; nb = 0 is 1 bit.

On the GPU and under ``kernels.emulate()`` the elementwise steps run as one
kernel each (``kernels/quant.cu``); max|W| and the exponent f are read on the
host as here.
"""
import math

from ..core import backend
from ..kernels import quant as kq
from .activations import _store, level_bits


def round_half_away(v):
    """round() with ties away from zero (C's round, numpy rounds ties to even)."""
    xp = backend.get_array_module(v)
    return xp.sign(v) * xp.floor(xp.abs(v) + v.dtype.type(0.5))


def hard_sigmoid(x):
    """clip((x + 1) / 2, 0, 1)."""
    xp = backend.get_array_module(x)
    t = x.dtype.type
    return xp.clip((x + t(1)) * t(0.5), t(0), t(1))


class QNNActivation:
    """n-bit activation (see the module docstring)."""

    def __init__(self, nb, nonlinearity="hardtanh"):
        nb = int(nb)
        if nonlinearity not in ("hardtanh", "relu"):
            raise ValueError("nonlinearity must be 'hardtanh' or 'relu', got %r"
                             % (nonlinearity,))
        if nonlinearity == "relu" and nb < 1:
            raise ValueError("the relu nonlinearity needs nb >= 1 (its top level "
                             "1 - 2^(1 - nb) is below 0 at nb = 0)")
        if nb < 0 or nb > 16:
            raise ValueError("nb must be in 0..16, got %d" % nb)
        self.nb = nb
        self.nonlinearity = nonlinearity
        self.low = -1.0 if nonlinearity == "hardtanh" else 0.0
        self.high = 1.0 if nonlinearity == "hardtanh" else 1.0 - 2.0 ** (1 - nb)

    @property
    def levels(self):
        """The output values: -1 + i 2^(1-nb), i = 0..2^nb, clipped to [low, high]."""
        step = 2.0 ** (1 - self.nb)
        values = {min(max(-1.0 + i * step, self.low), self.high) for i in range(2 ** self.nb + 1)}
        return tuple(sorted(values))

    def _unclipped(self, x):
        t = x.dtype.type
        levels = t(2 ** self.nb)
        return t(2) * round_half_away(hard_sigmoid(x) * levels) / levels - t(1)

    def forward(self, x, out=None):
        if kq.runs(x):
            return kq.qnn_activation_forward(x, 2 ** self.nb, self.low, self.high, out)
        xp = backend.get_array_module(x)
        t = x.dtype.type
        return _store(xp.clip(self._unclipped(x), t(self.low), t(self.high)), out)

    def backward(self, x, dy, out=None):
        if kq.runs(x, dy) and x.dtype == dy.dtype:
            return kq.qnn_activation_backward(x, dy, 2 ** self.nb, self.low, self.high, out)
        xp = backend.get_array_module(x)
        t = x.dtype.type
        v = self._unclipped(x)
        mask = (xp.abs(x) <= t(1)) & (v >= t(self.low)) & (v <= t(self.high))
        return _store(dy * mask.astype(dy.dtype), out)


class QNNWeights:
    """n-bit weights with one power-of-two scale per layer (see the module
    docstring). ``forward(w)`` takes W of any shape and returns Q of its shape."""

    def __init__(self, nb, symmetric=False):
        nb = int(nb)
        if nb < 0 or nb > 16:
            raise ValueError("nb must be in 0..16, got %d" % nb)
        self.nb = nb
        self.symmetric = bool(symmetric)

    @property
    def precision(self):
        """Bits of a quantized weight: 1 at nb = 0, else those of 2^nb values
        (2^nb + 1 when symmetric)."""
        if self.nb == 0:
            return 1
        return level_bits(2 ** self.nb + (1 if self.symmetric else 0))

    def scale_exponent(self, w):
        """nb - 1 + f with f = floor(log2(1 / max|W|)), or None when W is all 0."""
        xp = backend.get_array_module(w)
        m = float(xp.max(xp.abs(w))) if w.size else 0.0
        if m == 0.0:
            return None
        return self.nb - 1 + math.floor(math.log2(1.0 / m))

    def forward(self, w):
        xp = backend.get_array_module(w)
        t = w.dtype.type
        if self.nb == 0:
            if kq.runs(w):
                return kq.sign_forward(w)
            return xp.where(w >= 0, t(1), t(-1))
        e = self.scale_exponent(w)
        if e is None:
            return xp.zeros_like(w)
        s = t(2.0 ** e)
        half = 2.0 ** (self.nb - 1)
        high = half if self.symmetric else half - 1
        if kq.runs(w):
            return kq.qnn_weights_forward(w, s, -half, high)
        return xp.clip(round_half_away(w * s), t(-half), t(high)) / s

    def backward(self, w, dq):
        """dL/dW = dL/dQ (straight-through)."""
        return dq
