"""eltwise.cu: Eltwise's SUM (with coefficients), PROD (both gradients) and MAX
(Caffe's ties, its mask) over two and more bottoms, in place on bottom 0, equal
the NumPy layer on odd shapes and empty batches in float32 and float64, and
every kernel of the family is used."""
import numpy as np
import pytest

from support.kernel_coverage import every_kernel
from support.kernel_vs_numpy import assert_kernels_equal_numpy

LAYERS = ['eltwise_param { operation: SUM }',
          'eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 1 coeff: 3 }',
          'eltwise_param { operation: PROD }',
          'eltwise_param { operation: PROD stable_prod_grad: false }',
          'eltwise_param { operation: MAX }']


def _bottoms(shape, count):
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal(shape) for _ in range(count)]
    if xs[0].size:                        # ties: Caffe's CPU order decides
        xs[1].reshape(-1)[::3] = xs[0].reshape(-1)[::3]
        xs[-1].reshape(-1)[::4] = xs[0].reshape(-1)[::4]
    return xs


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5, 7), (0, 3), (1,)])
@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("param", LAYERS)
def test_eltwise(param, count, shape, dtype, in_place):
    if "coeff" in param:
        param = param.replace(" coeff: 1 coeff: 3", "") if count == 2 else \
            param.replace(" coeff: 3", "") if count == 3 else param
    assert_kernels_equal_numpy('type: "Eltwise" ' + param, _bottoms(shape, count), dtype,
                               in_place=in_place)


def test_without_gradient_to_some_bottoms():
    for param in LAYERS[2:]:
        assert_kernels_equal_numpy('type: "Eltwise" ' + param, _bottoms((3, 4), 3),
                                   propagate=[False, True, False])


def test_every_eltwise_kernel_is_used():
    seen = set()
    for param in LAYERS:
        count = 4 if "coeff" in param else 3
        seen |= assert_kernels_equal_numpy('type: "Eltwise" ' + param, _bottoms((3, 4), count))
    assert seen == every_kernel("eltwise")
