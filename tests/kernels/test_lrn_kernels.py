"""lrn.cu: LRN across and within channels takes its kernels and equals the
NumPy layer (beta 0.75 and others, windows wider than the blob, odd sizes,
empty batch; float32 and float64); every kernel of the family is used."""
import numpy as np
import pytest

from support.kernel_coverage import every_kernel
from support.kernel_layers import assert_kernels_equal_numpy

CASES = [
    ("local_size: 5 alpha: 0.0001 beta: 0.75", (2, 7, 3, 4)),
    ("local_size: 3 alpha: 0.5 beta: 0.6 k: 2", (2, 4, 5, 3)),
    ("local_size: 7 alpha: 0.3 beta: 0.75", (1, 3, 2, 5)),           # window > channels
    ("local_size: 5 alpha: 0.2 beta: 0.75", (0, 6, 3, 3)),
    ("local_size: 3 alpha: 0.4 beta: 0.75 norm_region: WITHIN_CHANNEL", (2, 3, 5, 6)),
    ("local_size: 5 alpha: 0.9 beta: 1.3 norm_region: WITHIN_CHANNEL", (1, 2, 7, 3)),
    ("local_size: 7 alpha: 0.1 beta: 0.75 norm_region: WITHIN_CHANNEL", (2, 2, 3, 4)),
    ("local_size: 3 alpha: 0.1 beta: 0.75 norm_region: WITHIN_CHANNEL", (0, 2, 3, 4)),
]


def _check(params, shape, dtype):
    x = np.random.default_rng(sum(shape)).standard_normal(shape) * 2
    return assert_kernels_equal_numpy('type: "LRN" lrn_param { %s }' % params, [x],
                                      dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params, shape", CASES)
def test_kernels_equal_numpy(params, shape, dtype):
    _check(params, shape, dtype)


def test_every_lrn_kernel_is_used():
    seen = set()
    for params, shape in CASES:
        seen |= _check(params, shape, np.float64)
    assert seen == every_kernel("lrn")
