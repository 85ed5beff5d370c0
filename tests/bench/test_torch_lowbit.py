"""bench/_torch_lowbit.py: the PyTorch bar computes the forks' math as ours does
(weight quantizers, SQ's row count, Quant forward and pseudo-gradient). Skipped
without torch (a benchmark aid, never a dependency)."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "bench")))
import _torch_lowbit as L  # noqa: E402

from pycaffe_lowbit import quant  # noqa: E402


class _Tnet:
    share_selection = False


def _w(shape=(37, 29), seed=0):
    w = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    w[0, 0], w[1, 1] = 0.0, -0.0
    return w


@pytest.mark.parametrize("q", [quant.BinaryWeights(True), quant.BinaryWeights(False),
                               quant.TernaryWeights()], ids=["bwn", "sign", "twn"])
def test_weight_quantizers_match_ours(q):
    w = _w()
    theirs = L._row_fn(q, None, _Tnet())(torch.from_numpy(w.copy())).numpy()
    np.testing.assert_allclose(theirs, q.forward(w.copy()), rtol=1e-6, atol=1e-7)


def test_sq_keeps_the_count_of_rows_and_can_share_ours():
    w = _w((40, 9))
    sq = quant.StochasticSelection(quant.BinaryWeights(True), 75.0,
                                   rng=np.random.default_rng(1))
    ours = sq.forward(w.copy())
    fn = L._row_fn(sq, None, _Tnet())
    theirs = fn(torch.from_numpy(w.copy())).numpy()
    kept = np.all(theirs == w, axis=1)
    assert kept.sum() == sq.count(40) == 10
    shared = _Tnet()
    shared.share_selection = True
    np.testing.assert_allclose(L._row_fn(sq, None, shared)(torch.from_numpy(w.copy())).numpy(),
                               ours, rtol=1e-6, atol=1e-7)


def test_straight_through_gradient():
    w = torch.from_numpy(_w()).requires_grad_()
    fn = L._row_fn(quant.BinaryWeights(True), None, _Tnet())
    q = L._StraightThrough.apply(w, fn)
    g = torch.randn_like(q)
    q.backward(g)
    assert torch.equal(w.grad, g)


@pytest.mark.parametrize("value,grad", [
    (quant.HWGQ([0.538, 1.076, 1.614]), quant.ReLUGrad(0.0, 1.614)),
    (quant.HWGQ([0.453, 1.51], 0.1), quant.ReLUGrad(0.1, 0.0)),
    (quant.Sign(), quant.HardTanhGrad(1.0)),
    (quant.HardTanh(), quant.ReLUGrad()),
    (quant.LeakyReLU(0.2), quant.HardTanhGrad(0.0)),
])
def test_quant_matches_ours(value, grad):
    x = np.random.default_rng(2).standard_normal((3, 5, 7)).astype(np.float32) * 2
    x.flat[:4] = [0.0, -0.0, 0.807, 1.614]          # zeros, a midpoint, the clip
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    q = quant.ActivationQuantizer(value, grad)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y = L._Elementwise.apply(xt, L._value_fn(value), L._grad_fn(grad))
    y.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y.detach().numpy(), q.forward(x.copy()))
    np.testing.assert_array_equal(xt.grad.numpy(), q.backward(x.copy(), dy.copy()))
