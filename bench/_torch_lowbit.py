"""PyTorch translations of the forks' layers (a mixin of bench/_torch_port.TorchNet;
benchmark helper only). The math is ../shared/LOWBIT.md's, read from our layer's
own quantizer objects so both sides take the same fork's meaning:

* Binary*/Ternary* Convolution / InnerProduct: the ordinary op with an
  effective weight Q = q(W), W seen as (num_output, k) rows, recomputed at every
  forward; the gradient reaches W straight through (dL/dW = dL/dQ: no alpha
  factor, no clipping mask), a custom autograd Function, so no extra work.
  BWN:  Q_n = a_n sign(W_n), sign(0) = +1, a_n = mean_j |W_nj| (or 1 without
        ``use_alpha``); TWN: D = 0.7 mean|W - mean W|, Q = a_n [|W| > D] sign(W),
        a_n = mean of |W_nj| over |W_nj| > D.
  SQ (``sq: true``, ratio < 100): m = int((1 - ratio/100) num) rows keep W_n,
  drawn without replacement with probability proportional to the row error
  e_n = |W_n - Q_n|_1 / |W_n|_1: ``torch.multinomial(e, m, replacement=False)``
  is that roulette (the same distribution as ours, other random numbers). With
  ``TorchNet.share_selection`` the rows our layer picked in its last forward are
  used instead, so the agreement check compares like with like.
* Quant (HWGQ): forward ``hwgq`` y = c_i for the first midpoint t_i >= x when
  x > 0, else -negative_slope (``torch.bucketize``); ``sign``, ``hard_tanh``,
  ``relu``. Backward ``relu``: dx = dy (x > 0 ? 1 : slope) [x <= clip];
  ``hard_tanh``: dx = dy [-clip <= x <= clip]. One autograd Function each.
"""
import math

import numpy as np
import torch

from pycaffe_lowbit import quant


class _StraightThrough(torch.autograd.Function):
    """y = q(w) (computed by ``qfn`` without autograd); dL/dw = dL/dy."""

    @staticmethod
    def forward(ctx, w, qfn):
        return qfn(w)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class _Elementwise(torch.autograd.Function):
    """y = value(x); dx = grad(x, dy) (a pseudo-gradient)."""

    @staticmethod
    def forward(ctx, x, value, grad):
        ctx.save_for_backward(x)
        ctx.grad = grad
        return value(x)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return ctx.grad(x, dy), None, None


def _sign(w, a=1.0):
    """a where w >= 0 (0 and -0.0 included), else -a; a a scalar or (num, 1):
    copysign(a, w + 0), as -0.0 + 0 = +0.0 (two passes; a broadcast
    ``torch.where`` takes four times as long on one thread)."""
    s = w + 0.0
    if not torch.is_tensor(a):
        a = torch.tensor(a, dtype=w.dtype)
    return torch.copysign(a, s, out=s)


def _mean_abs(w):
    """a_n = mean_j |W_nj| (num, 1), in one pass."""
    return torch.linalg.vector_norm(w, 1, dim=1, keepdim=True) / w.shape[1]


def _binary(use_alpha):
    def q(w):
        return _sign(w, _mean_abs(w)) if use_alpha else _sign(w)
    return q


def _ternary(factor):
    def q(w):
        d = factor * (w - w.mean()).abs().mean()
        a = w.abs()
        kept = (a > d).to(w.dtype)
        alpha = (a * kept).sum(1, keepdim=True) / kept.sum(1, keepdim=True).clamp(min=1)
        return _sign(w, alpha) * kept
    return q


def _row_fn(quantizer, layer, tnet):
    """The torch function (num, k) -> (num, k) for one of our weight quantizers."""
    if isinstance(quantizer, quant.BinaryWeights):
        return _binary(quantizer.use_alpha)
    if isinstance(quantizer, quant.TernaryWeights):
        return _ternary(quantizer.factor)
    if isinstance(quantizer, quant.StochasticSelection):
        inner = _row_fn(quantizer.inner, layer, tnet)

        def sq(w):
            q = inner(w)
            num = w.shape[0]
            m = quantizer.count(num)
            if m == 0:
                return q
            if tnet.share_selection and quantizer.selected is not None:
                rows = torch.from_numpy(np.flatnonzero(quantizer.selected))
            else:
                den = torch.linalg.vector_norm(w, 1, dim=1)
                e = torch.where(den > 0, torch.linalg.vector_norm(w - q, 1, dim=1)
                                / den.clamp(min=1e-30), torch.zeros_like(den)).double()
                pos = int((e > 0).sum())
                if pos >= m:
                    rows = torch.multinomial(e, m, replacement=False)
                else:          # too few rows with an error: all of them, then any
                    rest = torch.randperm(num)[: m - pos] if pos == 0 else \
                        torch.multinomial((e == 0).double(), m - pos, replacement=False)
                    rows = torch.cat([torch.nonzero(e > 0).flatten(), rest])
            q[rows] = w[rows]
            return q
        return sq
    raise TypeError("no PyTorch translation for weight quantizer %r" % (quantizer,))


def _hwgq(v):
    thr = torch.from_numpy(np.asarray(v.thresholds, np.float32))
    levels = torch.from_numpy(np.asarray(v.centers, np.float32))
    low = -float(v.negative_slope)

    def f(x):
        y = levels[torch.bucketize(x, thr, right=False)]
        return torch.where(x > 0, y, torch.full_like(x, low))
    return f


def _value_fn(v):
    if isinstance(v, quant.HWGQ):
        return _hwgq(v)
    if isinstance(v, quant.Sign):
        return _sign
    if isinstance(v, quant.HardTanh):
        return lambda x: x.clamp(-1, 1)
    if isinstance(v, quant.LeakyReLU):
        s = v.negative_slope
        return lambda x: torch.where(x > 0, x, x * s)
    raise TypeError("no PyTorch translation for activation %r" % (v,))


def _grad_fn(g):
    clip = None if g.clip == math.inf else g.clip
    if isinstance(g, quant.ReLUGrad):
        s = g.negative_slope
        if s == 0:
            if clip is None:
                return lambda x, dy: torch.where(x > 0, dy, torch.zeros_like(dy))
            return lambda x, dy: torch.where((x > 0) & (x <= clip), dy, torch.zeros_like(dy))

        def leaky(x, dy):
            dx = torch.where(x > 0, dy, dy * s)
            return dx if clip is None else torch.where(x <= clip, dx, torch.zeros_like(dy))
        return leaky
    if isinstance(g, quant.HardTanhGrad):
        if clip is None:
            return lambda x, dy: dy.clone()
        return lambda x, dy: torch.where((x >= -clip) & (x <= clip), dy, torch.zeros_like(dy))
    raise TypeError("no PyTorch translation for pseudo-gradient %r" % (g,))


class LowbitLayers:
    """The forks' layers; ``_weight_fn`` is the weight hook of Convolution and
    InnerProduct (identity for the float layers)."""

    share_selection = False

    def _weight_fn(self, layer, w):
        """A callable giving the weight tensor a layer computes with."""
        quantizer = getattr(layer, "weight_quantizer", None)
        if quantizer is None:
            return lambda: w
        rows = _row_fn(quantizer, layer, self)

        def qfn(t):
            with torch.no_grad():
                return rows(t.reshape(t.shape[0], -1)).reshape(t.shape)
        return lambda: _StraightThrough.apply(w, qfn)

    def _l_BinaryConvolution(self, i, layer, lp):
        return self._l_Convolution(i, layer, lp)

    _l_TernaryConvolution = _l_BinaryConvolution

    def _l_BinaryInnerProduct(self, i, layer, lp):
        return self._l_InnerProduct(i, layer, lp)

    _l_TernaryInnerProduct = _l_BinaryInnerProduct

    def _l_Quant(self, i, layer, lp):
        q = layer.quantizer
        value, grad = _value_fn(q.value), _grad_fn(q.gradient)
        return lambda x: [_Elementwise.apply(x[0], value, grad)]
