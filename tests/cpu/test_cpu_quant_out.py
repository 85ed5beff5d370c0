"""Weight quantizers writing Q into a caller's buffer (``forward(w, out=)``),
as the quantized layers do at every forward: bit-equal to a fresh Q, the
latent W untouched, and the layer's buffer reused across forwards."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit import quant


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda: quant.BinaryWeights(True), lambda: quant.BinaryWeights(False),
    lambda: quant.TernaryWeights(),
    lambda: quant.StochasticSelection(quant.BinaryWeights(True), 50,
                                      rng=np.random.default_rng(0)),
])
def test_forward_into_out_matches_fresh(dtype, make):
    w = np.random.default_rng(1).standard_normal((7, 13)).astype(dtype)
    w[0, :3] = [0.0, -0.0, 0.0]
    w0 = w.copy()
    ref = make().forward(w)
    out = np.full_like(w, np.nan)
    got = make().forward(w, out=out)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(ref))
    np.testing.assert_array_equal(w, w0)


def test_layer_reuses_its_buffer_and_recomputes_q():
    x = np.random.default_rng(2).standard_normal((2, 6)).astype(np.float32)
    layer, bottom, top = build_layer(
        'name: "ip" type: "BinaryInnerProduct" inner_product_param { num_output: 4 '
        'weight_filler { type: "gaussian" std: 1 } }', [x], dtype=np.float32)
    layer.forward(bottom, top)
    first = layer._w_eff
    layer.blobs[0].data[...] *= -1          # the next forward sees the new W
    layer.forward(bottom, top)
    assert np.shares_memory(layer._w_eff, first)
    ref = quant.BinaryWeights(True).forward(layer.blobs[0].data)
    np.testing.assert_array_equal(layer._w_eff, ref)
    np.testing.assert_allclose(top[0].data, x @ ref.T + layer.blobs[1].data, rtol=1e-5,
                               atol=1e-6)
