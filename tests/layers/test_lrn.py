"""LRN: naive references for both regions, gradients, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.layers import LayerSetupError


def _f32(*values):
    """The proto's float fields hold float32 values."""
    return [float(np.float32(v)) for v in values]


def naive_across(x, size, alpha, beta, k):
    alpha, beta, k = _f32(alpha, beta, k)
    half = (size - 1) // 2
    c = x.shape[1]
    y = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale = k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)
        y[:, ch] = x[:, ch] * scale ** -beta
    return y


def naive_within(x, size, alpha, beta):
    """Caffe's split / square / AVE pool (pad (size-1)/2, Caffe divisor) / power /
    product, with the pooling written as Caffe's loops."""
    alpha, beta = _f32(alpha, beta)
    half = (size - 1) // 2
    n, c, h, w = x.shape
    pooled = np.empty_like(x)
    for a, b in np.ndindex(h, w):
        hs, ws = a - half, b - half
        he, we = min(hs + size, h + half), min(ws + size, w + half)
        divisor = (he - hs) * (we - ws)
        hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
        pooled[:, :, a, b] = (x[:, :, hs:he, ws:we] ** 2).sum(axis=(2, 3)) / divisor
    return x * (1 + alpha * pooled) ** -beta


def _lrn(params, x, xp=np, **kw):
    return build_layer('name: "lrn" type: "LRN" lrn_param { %s }' % params, [x], xp=xp, **kw)


@pytest.mark.parametrize("params,size,alpha,beta,k", [
    ("", 5, 1.0, 0.75, 1.0),
    ("local_size: 3 alpha: 0.5 beta: 0.6 k: 2", 3, 0.5, 0.6, 2.0),
    ("local_size: 9 alpha: 2 beta: 0.75", 9, 2.0, 0.75, 1.0),  # window wider than C
])
def test_across_matches_naive(xp, params, size, alpha, beta, k):
    x = np.random.default_rng(0).standard_normal((2, 7, 3, 2))
    layer, bottom, top = _lrn(params, x, xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, naive_across(x, size, alpha, beta, k), rtol=1e-12)


@pytest.mark.parametrize("params,size,alpha,beta", [
    ("norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.5", 3, 0.5, 0.75),
    ("norm_region: WITHIN_CHANNEL local_size: 5 alpha: 3 beta: 0.5 k: 7", 5, 3.0, 0.5),
])
def test_within_matches_naive(xp, params, size, alpha, beta):
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 5))
    layer, bottom, top = _lrn(params, x, xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, naive_within(x, size, alpha, beta), rtol=1e-12)


@pytest.mark.parametrize("params", [
    "local_size: 3 alpha: 0.8 beta: 0.75 k: 1.5",
    "local_size: 5 alpha: 2 beta: 0.6",
    "norm_region: WITHIN_CHANNEL local_size: 3 alpha: 0.8",
    "norm_region: WITHIN_CHANNEL local_size: 5 alpha: 2 beta: 0.6",
])
def test_gradient(xp, params):
    x = np.random.default_rng(2).standard_normal((2, 6, 4, 4))
    layer, bottom, top = _lrn(params, x, xp)
    check_gradient(layer, bottom, top)


def test_errors():
    with pytest.raises(LayerSetupError, match="LRN only supports odd values for local_size"):
        _lrn("local_size: 4", np.zeros((1, 5, 3, 3)))
    with pytest.raises(LayerSetupError, match="Input must have 4 axes"):
        _lrn("", np.zeros((1, 5, 3)))
