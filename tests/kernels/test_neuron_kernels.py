"""neuron.cu: ReLU, Sigmoid and TanH take their kernels (forward and backward,
in place too) and every kernel of the family is used. Their values, golden
cases and gradient checks run through the kernels in tests/layers and
tests/golden (the ``kernels`` backend of the ``xp`` fixture)."""
import numpy as np
import pytest

from support.helpers import build_layer
from support.kernel_coverage import every_kernel, launches

LAYERS = ['type: "ReLU"', 'type: "ReLU" relu_param { negative_slope: 0.1 }',
          'type: "Sigmoid"', 'type: "TanH"']


def _run(text, in_place):
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    layer, bottom, top = build_layer('name: "n" %s' % text, [x], dtype=np.float32)
    if in_place:
        top = bottom
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    return top[0].data.copy(), bottom[0].diff.copy()


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("text", LAYERS)
def test_kernels_equal_numpy(text, in_place):
    ref = _run(text, in_place)
    with launches() as seen:
        got = _run(text, in_place)
    assert seen
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_every_neuron_kernel_is_used():
    with launches() as seen:
        for text in LAYERS:
            _run(text, False)
    assert seen == every_kernel("neuron")
