"""softmax.cu: Softmax along any axis (forward and backward, in place) equals
the NumPy layer on odd shapes and empty batches in float32 and float64, and
every kernel of the family is used. SoftmaxWithLoss and InfogainLoss take the
same forward kernel (tests/kernels/test_loss_kernels.py)."""
import numpy as np
import pytest

from support.kernel_coverage import every_kernel
from support.kernel_vs_numpy import assert_kernels_equal_numpy

CASES = [((2, 5), 1), ((3, 4, 5), 1), ((3, 4, 5), 2), ((3, 4, 5), 0), ((2, 3, 4, 5), -1),
         ((7, 1, 3), 1), ((0, 4, 3), 1), ((1,), 0)]


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, axis", CASES)
def test_softmax(shape, axis, dtype, in_place):
    x = np.random.default_rng(0).standard_normal(shape) * 4
    assert_kernels_equal_numpy('type: "Softmax" softmax_param { axis: %d }' % axis, [x], dtype,
                               in_place=in_place)


def test_large_scores_do_not_overflow():
    x = np.array([[1000.0, 1001.0, -1000.0], [-5e3, -5e3, -5e3]])
    assert_kernels_equal_numpy('type: "Softmax"', [x])


def test_every_softmax_kernel_is_used():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    assert assert_kernels_equal_numpy('type: "Softmax"', [x]) == every_kernel("softmax")
