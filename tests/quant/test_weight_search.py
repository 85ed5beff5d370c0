"""Categorical weight search: value sets, temperature schedule, hard/soft forward
and gradient by hand, and the layers (soft mode passes a numeric gradient check)."""
import math

import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.quant.weight_search import WeightSearch, named_value_set, temperature
from support.helpers import build_layer, check_gradient


def test_named_value_sets_match_the_seed_json():
    assert named_value_set("1b") == (-1, 1)
    assert named_value_set("po2-2b") == (-1, -0.5, 0.5, 1)
    assert named_value_set("po2-3b") == (-0.25, -0.5, -1, -2, 2, 1, 0.5, 0.25)
    assert len(named_value_set("po2-4b")) == 16 and min(named_value_set("po2-4b")) == -8
    assert named_value_set("int-2b") == (-2, -1, 0, 1)
    assert named_value_set("int-4b") == tuple(range(-8, 8))
    with pytest.raises(ValueError, match="unknown value set 'po2-5b'"):
        named_value_set("po2-5b")


def test_temperature_schedule():
    # the seed: tau = max(tau0 * rate^(epoch // step), tau_min), per epoch
    per_epoch = 10
    taus = [temperature(1.0, 0.97, per_epoch * 1, 1e-5, it) for it in range(0, 40, 5)]
    assert taus == [1.0, 1.0, 0.97, 0.97, 0.97 ** 2, 0.97 ** 2, 0.97 ** 3, 0.97 ** 3]
    assert temperature(2.0, 0.5, 2, 0.3, 7) == 0.3        # 2 * 0.5^3 = 0.25 -> floor
    assert temperature(1.0, 0.94, 1, 1e-5, 10 ** 6) == 1e-5


A = np.array([[0.2, -0.1, 0.4], [1.0, 1.0, -2.0]])     # 2 weights, K = 3
V = (-1.0, 0.5, 2.0)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("hard", [True, False])
def test_forward_and_gradient_by_hand(xp, hard):
    tau = 0.5
    ws = WeightSearch(V, hard=hard)
    w, p = ws.forward(xp.asarray(A), tau)
    p_ref = _softmax(A / tau)
    np.testing.assert_allclose(backend.to_numpy(p), p_ref, rtol=1e-12)
    if hard:   # weight 0: logits max at index 2 -> 2.0; weight 1: tie 0/1 -> first (-1)
        assert backend.to_numpy(w).tolist() == [2.0, -1.0]
    else:
        np.testing.assert_allclose(backend.to_numpy(w), p_ref @ np.array(V), rtol=1e-12)
    dw = np.array([0.3, -2.0])
    da = backend.to_numpy(ws.backward(p, xp.asarray(dw), tau))
    # dL/da_k = sum_i dW v_i dp_i/da_k = dW / tau * p_k (v_k - E[v])
    expect = np.zeros_like(A)
    for j in range(2):
        jac = (np.diag(p_ref[j]) - np.outer(p_ref[j], p_ref[j])) / tau   # dp_i / da_k
        expect[j] = dw[j] * (np.array(V) @ jac)
    np.testing.assert_allclose(da, expect, rtol=1e-10, atol=1e-15)


def test_gumbel_noise_changes_the_choice_only_when_scaled():
    ws = WeightSearch(V, gumbel_scale=0.0)
    a = np.tile(np.array([0.0, 0.0, 0.1]), (1000, 1))
    assert (ws.forward(a, 1.0)[0] == 2.0).all()
    noisy = WeightSearch(V, gumbel_scale=1.0)
    picks = noisy.forward(a, 1.0)[0]
    assert set(picks.tolist()) == set(V)                 # noise explores every value
    assert (noisy.forward(a, 1.0, noise=False)[0] == 2.0).all()


def _ws_conv(xp, mode="HARD", phase=None, extra=""):
    text = ("name: 'ws' type: 'WeightSearchConvolution' weight_search_param { "
            "value_set: 'po2-2b' mode: %s init_temperature: 0.8 %s } convolution_param { "
            "num_output: 2 kernel_size: 3 pad: 1 bias_filler { type: 'gaussian' } }"
            % (mode, extra))
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4))
    return build_layer(text, [x], xp=xp, phase=phase)


def test_logits_init_and_shape(xp):
    layer, bottom, top = _ws_conv(xp)
    a = backend.to_numpy(layer.blobs[0].data)
    assert a.shape == (2, 3, 3, 3, 4)
    assert np.all(np.abs(a - math.log(1 / 4)) <= 5e-6 + 1e-12)
    assert a.std() > 1e-7                                    # not constant


def test_soft_layer_passes_numeric_gradient_check(xp):
    layer, bottom, top = _ws_conv(xp, "SOFT")
    layer.blobs[0].data[...] = xp.asarray(
        np.random.default_rng(3).normal(size=layer.blobs[0].shape))
    check_gradient(layer, bottom, top, stepsize=1e-5, threshold=1e-4)


def test_hard_layer_forward_and_backward_by_hand(xp):
    layer, bottom, top = _ws_conv(xp, "HARD")
    a = np.random.default_rng(4).normal(size=layer.blobs[0].shape)
    layer.blobs[0].data[...] = xp.asarray(a)
    layer.forward(bottom, top)
    v = np.array(named_value_set("po2-2b"))
    w = v[a.argmax(-1)]
    ref_layer, ref_bottom, ref_top = build_layer(
        "name: 'r' type: 'Convolution' convolution_param { num_output: 2 kernel_size: 3 "
        "pad: 1 }", [backend.to_numpy(bottom[0].data)], xp=xp)
    ref_layer.blobs[0].data[...] = xp.asarray(w)
    ref_layer.blobs[1].data[...] = layer.blobs[1].data
    ref_layer.forward(ref_bottom, ref_top)
    np.testing.assert_allclose(backend.to_numpy(top[0].data),
                               backend.to_numpy(ref_top[0].data), rtol=1e-12)
    dy = xp.asarray(np.random.default_rng(5).normal(size=top[0].shape))
    top[0].diff[...] = dy
    ref_top[0].diff[...] = dy
    layer.backward(top, [True], bottom)
    ref_layer.backward(ref_top, [True], ref_bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff),
                               backend.to_numpy(ref_bottom[0].diff), rtol=1e-10)
    dw = backend.to_numpy(ref_layer.blobs[0].diff)
    tau = float(np.float32(0.8))            # the float field's value
    p = _softmax(a / tau)
    expect = p * (v - (p @ v)[..., None]) * (dw / tau)[..., None]
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), expect, rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[1].diff),
                               backend.to_numpy(ref_layer.blobs[1].diff), rtol=1e-10)


def test_soft_layer_is_hard_in_test_phase(xp):
    layer, bottom, top = _ws_conv(xp, "SOFT", phase=caffe_pb2.TEST)
    a = np.random.default_rng(6).normal(size=layer.blobs[0].shape)
    layer.blobs[0].data[...] = xp.asarray(a)
    layer.forward(bottom, top)
    v = np.array(named_value_set("po2-2b"))
    np.testing.assert_array_equal(backend.to_numpy(layer._w_eff), v[a.argmax(-1)])


def test_layer_temperature_follows_the_iteration(xp):
    layer, _, _ = _ws_conv(xp, extra="temperature_decay: 0.5 iters_per_epoch: 3 "
                                     "temperature_step: 2 min_temperature: 0.1")
    taus = []
    for it in (0, 5, 6, 12, 100):
        layer.set_iteration(it)
        taus.append(layer.temperature())
    assert taus == pytest.approx([0.8, 0.8, 0.4, 0.2, 0.1])


def test_inner_product_variant_and_errors(xp):
    text = ("name: 'fc' type: 'WeightSearchInnerProduct' weight_search_param { "
            "value: -1 value: 0 value: 1 } inner_product_param { num_output: 3 }")
    layer, bottom, top = build_layer(text, [np.ones((2, 5))], xp=xp)
    assert layer.blobs[0].shape == (3, 5, 3)
    layer.forward(bottom, top)
    assert top[0].shape == (2, 3)
    with pytest.raises(LayerSetupError, match="layer 'fc'.*needs a value set"):
        build_layer("name: 'fc' type: 'WeightSearchInnerProduct' weight_search_param {} "
                    "inner_product_param { num_output: 3 }", [np.ones((2, 5))])
    with pytest.raises(LayerSetupError, match="either value or value_set"):
        build_layer("name: 'fc' type: 'WeightSearchInnerProduct' weight_search_param { "
                    "value: 1 value: 2 value_set: '1b' } inner_product_param { num_output: 3 }",
                    [np.ones((2, 5))])
