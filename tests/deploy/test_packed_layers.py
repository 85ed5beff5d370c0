"""Packed Convolution / InnerProduct against the float layers on coded inputs
(every backend of the ``xp`` fixture)."""
import numpy as np
import pytest

from pycaffe_lowbit.deploy import packed_ops
from pycaffe_lowbit.deploy.runtime import PackedConvolution, PackedInnerProduct
from support.helpers import build_layer, run_forward

LEVELS = {"sign": [-1.0, 1.0], "3ne": [-0.0, 0.538, 1.076, 1.614],
          "2n": [-0.0, 0.453, 1.51], "3ne_slope": [-0.1, 0.538, 1.076, 1.614]}


def _quantized(rng, shape, ternary):
    s = rng.choice([-1, 0, 1] if ternary else [-1, 1], shape).astype(np.float32)
    alpha = rng.uniform(0.2, 1, shape[0]).astype(np.float32)
    return alpha.reshape((-1,) + (1,) * (len(shape) - 1)) * s


def _compare(text, x, levels, ternary, cls, xp, seed=0):
    rng = np.random.default_rng(seed)
    layer, bottom, top = build_layer(text, [x], dtype=np.float32, xp=xp)
    w = _quantized(rng, layer.blobs[0].shape, ternary)
    layer.blobs[0].set_values(w)
    if len(layer.blobs) > 1:
        layer.blobs[1].set_values(rng.standard_normal(layer.blobs[1].shape))
    expected = run_forward(layer, bottom, top)[0]
    rows = w.reshape(w.shape[0], -1)
    alpha = np.abs(rows).max(axis=1)
    packed = packed_ops.PackedWeights.from_signs(alpha, np.sign(rows).astype(np.int8),
                                                 w.shape, ternary=ternary).to(xp)
    wrapped = cls(layer, packed, packed_ops.ActivationCoding(levels))
    got = run_forward(wrapped, bottom, top)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("levels", sorted(LEVELS))
@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("geometry", ["kernel_size: 3 pad: 1", "kernel_size: 5",
                                      "kernel_size: 3 stride: 2 pad: 2 group: 2",
                                      "kernel_h: 3 kernel_w: 2 pad_h: 1 dilation: 2"])
def test_packed_convolution_equals_float(levels, ternary, geometry, xp):
    rng = np.random.default_rng(1)
    x = np.asarray(LEVELS[levels], np.float32)[rng.integers(0, len(LEVELS[levels]),
                                                            (2, 4, 9, 8))]
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 6 %s '
            'weight_filler { type: "gaussian" } }' % geometry)
    _compare(text, x, LEVELS[levels], ternary, PackedConvolution, xp)


@pytest.mark.parametrize("levels", sorted(LEVELS))
@pytest.mark.parametrize("ternary", [False, True])
def test_packed_inner_product_equals_float(levels, ternary, xp):
    rng = np.random.default_rng(2)
    x = np.asarray(LEVELS[levels], np.float32)[rng.integers(0, len(LEVELS[levels]),
                                                            (5, 3, 7, 7))]
    text = 'name: "ip" type: "InnerProduct" inner_product_param { num_output: 10 }'
    _compare(text, x, LEVELS[levels], ternary, PackedInnerProduct, xp)
