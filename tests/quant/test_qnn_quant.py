"""QNN quantizers and layers: forward and straight-through gradient against
closed forms (the seed's formulas written out level by level)."""
import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError
from pycaffe_lowbit.quant.qnn import QNNActivation, QNNWeights, round_half_away
from support.helpers import build_layer, run_in_place

X = np.array([-1.5, -1.0, -0.9, -0.75, -0.6, -0.25, -0.1, -0.0, 0.0, 0.1, 0.2, 0.25,
              0.5, 0.6, 0.74, 0.75, 0.9, 1.0, 1.2])


def test_round_half_away_from_zero(xp):
    v = xp.asarray([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.49])
    assert backend.to_numpy(round_half_away(v)).tolist() == [-3, -2, -1, 1, 2, 3, 0, -0]


def test_binarynet_sign_and_hardtanh_ste(xp):
    q = QNNActivation(0, "hardtanh")
    x = xp.asarray(X)
    y = backend.to_numpy(q.forward(x))
    assert y.tolist() == [1.0 if v >= 0 else -1.0 for v in X]     # sign(0) = sign(-0) = +1
    dx = backend.to_numpy(q.backward(x, xp.full(X.shape, 3.0)))
    assert dx.tolist() == [3.0 if abs(v) <= 1 else 0.0 for v in X]


def test_two_bit_hardtanh_levels():
    # nb = 2: v = 2 round(4 hs(x)) / 4 - 1; hs = (x + 1) / 2; levels -1, -.5, 0, .5, 1
    q = QNNActivation(2, "hardtanh")
    expect = [np.clip(2 * np.floor(4 * np.clip((v + 1) / 2, 0, 1) + 0.5) / 4 - 1, -1, 1)
              for v in X]
    assert q.forward(X).tolist() == expect
    assert set(q.forward(X).tolist()) <= {-1, -0.5, 0, 0.5, 1}
    # ties go away from zero: x = -0.75 -> 4 hs = 0.5 -> 1 -> -0.5; x = 0.25 -> 2.5 -> 3
    assert q.forward(np.array([-0.75, 0.25])).tolist() == [-0.5, 0.5]
    assert q.backward(X, np.ones_like(X)).tolist() == [float(abs(v) <= 1) for v in X]


def test_relu_levels_and_ste():
    # nb = 2 relu: y = clip(v, 0, 0.5); the gradient passes where |x| <= 1 and
    # v is inside [0, 0.5]: 4 hs in [1.5, 3.5), i.e. x in [-0.25, 0.75)
    q = QNNActivation(2, "relu")
    y = q.forward(X)
    assert set(y.tolist()) <= {0.0, 0.5}
    assert y.tolist() == [0.5 if v >= 0.25 else 0.0 for v in X]
    dx = q.backward(X, np.ones_like(X))
    assert dx.tolist() == [float(-0.25 <= v < 0.75) for v in X]
    q4 = QNNActivation(4, "relu")
    assert q4.forward(np.array([5.0, -5.0, 0.0])).tolist() == [0.875, 0.0, 0.0]


def test_activation_rejects_relu_at_zero_bits():
    with pytest.raises(ValueError, match="relu nonlinearity needs nb >= 1"):
        QNNActivation(0, "relu")


@pytest.mark.parametrize("nb,symmetric", [(2, False), (2, True), (4, False), (3, True)])
def test_weight_quantizer_closed_form(xp, nb, symmetric):
    w = np.array([[0.3, -0.2, 0.05, -0.3], [0.12, 0.0, -0.07, 0.29]])
    # max|W| = 0.3 -> f = floor(log2(1 / 0.3)) = 1, scale 2^(nb - 1 + 1) = 2^nb
    s = 2.0 ** nb
    hi = 2 ** (nb - 1) if symmetric else 2 ** (nb - 1) - 1
    expect = np.clip(np.sign(w * s) * np.floor(np.abs(w * s) + 0.5), -2 ** (nb - 1), hi) / s
    q = QNNWeights(nb, symmetric)
    assert q.scale_exponent(xp.asarray(w)) == nb
    out = backend.to_numpy(q.forward(xp.asarray(w)))
    np.testing.assert_array_equal(out, expect)
    dq = xp.asarray(np.arange(8.0).reshape(2, 4))
    assert q.backward(xp.asarray(w), dq) is dq                 # straight through


def test_weight_quantizer_binary_and_zero():
    q = QNNWeights(0)
    w = np.array([-0.5, -0.0, 0.0, 0.2])
    assert q.forward(w).tolist() == [-1, 1, 1, 1]
    assert QNNWeights(2).forward(np.zeros(3)).tolist() == [0, 0, 0]
    # 2 bits, max|W| = 1 -> f = 0, s = 2: values -1, -0.5, 0, 0.5 (not symmetric)
    assert QNNWeights(2).forward(np.array([1.0, -1.0, 0.3, 0.2])).tolist() == \
        [0.5, -1.0, 0.5, 0.0]


def test_activation_layer_in_place_keeps_input(xp):
    text = "name: 'q' type: 'QNNActivation' qnn_activation_param { nb: 0 }"
    x = X.reshape(1, -1)
    layer, y, blob = run_in_place(text, x, np.ones_like(x), xp)
    assert y.ravel().tolist() == [1.0 if v >= 0 else -1.0 for v in X]
    assert backend.to_numpy(blob.diff).ravel().tolist() == [float(abs(v) <= 1) for v in X]


def test_activation_layer_bad_parameters_name_the_layer():
    with pytest.raises(LayerSetupError, match="layer 'act'.*relu nonlinearity needs nb"):
        build_layer("name: 'act' type: 'QNNActivation' "
                    "qnn_activation_param { nb: 0 nonlinearity: RELU }", [np.zeros((2, 3))])


def _qnn_conv(xp, nb):
    text = ("name: 'c' type: 'QNNConvolution' qnn_weight_param { nb: %d } "
            "convolution_param { num_output: 3 kernel_size: 3 pad: 1 "
            "weight_filler { type: 'gaussian' std: 0.3 } bias_filler { type: 'gaussian' } }"
            % nb)
    x = np.random.default_rng(0).normal(size=(2, 2, 5, 5))
    return build_layer(text, [x], xp=xp)


def test_qnn_conv_computes_with_quantized_weight(xp):
    layer, bottom, top = _qnn_conv(xp, 2)
    w = backend.to_numpy(layer.blobs[0].data)
    q = QNNWeights(2).forward(w)
    layer.forward(bottom, top)
    ref = build_layer("name: 'r' type: 'Convolution' convolution_param { num_output: 3 "
                      "kernel_size: 3 pad: 1 }", [backend.to_numpy(bottom[0].data)], xp=xp)
    ref[0].blobs[0].data[...] = xp.asarray(q)
    ref[0].blobs[1].data[...] = layer.blobs[1].data
    ref[0].forward(ref[1], ref[2])
    np.testing.assert_allclose(backend.to_numpy(top[0].data),
                               backend.to_numpy(ref[2][0].data), rtol=1e-12)
    # backward: dx with Q, dW straight into the latent W (the reference's dW)
    dy = xp.asarray(np.random.default_rng(1).normal(size=top[0].shape))
    for lay, bot, tp in ((layer, bottom, top), ref):
        tp[0].diff[...] = dy
        lay.backward(tp, [True], bot)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff),
                               backend.to_numpy(ref[1][0].diff), rtol=1e-10)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff),
                               backend.to_numpy(ref[0].blobs[0].diff), rtol=1e-10)


def test_qnn_inner_product_binary_weights(xp):
    text = ("name: 'ip' type: 'QNNInnerProduct' qnn_weight_param { nb: 0 } "
            "inner_product_param { num_output: 4 bias_term: false "
            "weight_filler { type: 'gaussian' std: 1 } }")
    x = np.random.default_rng(2).normal(size=(3, 5))
    layer, bottom, top = build_layer(text, [x], xp=xp)
    layer.forward(bottom, top)
    w = backend.to_numpy(layer.blobs[0].data)
    np.testing.assert_allclose(backend.to_numpy(top[0].data), x @ np.where(w >= 0, 1, -1).T,
                               rtol=1e-12)
