"""pooling.cu: MAX (with Caffe's mask, in the mask top when there are two),
AVE and STOCHASTIC pooling take their kernels and equal the NumPy layer on
fixed and random geometries (padding, ceil and floor, global, windows past
the image, odd sizes, empty batch; float32 and float64); STOCHASTIC TRAIN
draws the same numbers as the NumPy path for the same seed; every kernel of
the family is used."""
import numpy as np
import pytest

from pycaffe_lowbit.proto import caffe_pb2
from support.kernel_coverage import every_kernel, launches
from support.kernel_layers import assert_kernels_equal_numpy, forward_backward

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST

CASES = [  # (pooling_param, input shape, tops, phase)
    ("pool: MAX kernel_size: 3 stride: 2", (2, 3, 7, 6), 1, TEST),
    ("pool: MAX kernel_size: 3 stride: 2 pad: 1", (2, 3, 7, 6), 2, TEST),
    ("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 2",
     (1, 2, 5, 9), 2, TEST),
    ("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", (2, 2, 8, 8), 1, TEST),
    ("pool: MAX kernel_size: 1 stride: 3", (2, 2, 7, 5), 2, TEST),      # past the image
    ("pool: MAX global_pooling: true", (3, 4, 5, 3), 2, TEST),
    ("pool: MAX kernel_size: 2 stride: 2", (0, 3, 6, 6), 2, TEST),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (2, 3, 7, 6), 1, TEST),
    ("pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 2 pad_w: 1",
     (2, 2, 9, 7), 1, TEST),
    ("pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR", (1, 2, 8, 7), 1, TEST),
    ("pool: AVE global_pooling: true", (2, 5, 4, 6), 1, TEST),
    ("pool: AVE kernel_size: 2", (0, 2, 5, 5), 1, TEST),
    ("pool: STOCHASTIC kernel_size: 3 stride: 2", (2, 3, 7, 6), 1, TEST),
    ("pool: STOCHASTIC kernel_h: 2 kernel_w: 3 stride: 1", (1, 2, 5, 4), 1, TEST),
    ("pool: STOCHASTIC kernel_size: 3 stride: 2", (2, 3, 7, 6), 1, TRAIN),
    ("pool: STOCHASTIC kernel_size: 2 stride: 3", (2, 2, 7, 8), 1, TRAIN),
    ("pool: STOCHASTIC global_pooling: true", (2, 3, 4, 5), 1, TRAIN),
    ("pool: STOCHASTIC kernel_size: 2", (0, 2, 4, 4), 1, TRAIN),
]


def _input(shape, params, seed=0):
    rng = np.random.default_rng(seed)
    if "STOCHASTIC" in params:   # values >= 0, as the sampling assumes
        return rng.uniform(0.05, 1.0, shape)
    return rng.standard_normal(shape)


def _check(params, shape, tops, phase, dtype):
    text = 'type: "Pooling" pooling_param { %s }' % params
    return assert_kernels_equal_numpy(text, [_input(shape, params)], dtype=dtype,
                                      n_top=tops, phase=phase)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params, shape, tops, phase", CASES)
def test_kernels_equal_numpy(params, shape, tops, phase, dtype):
    _check(params, shape, tops, phase, dtype)


# Without padding, a ceil-mode window can lie past the image: AVE divides by a
# pool size of 0 there (NaN, as Caffe), on both paths.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_random_geometries(method):
    rng = np.random.default_rng(7)
    for _ in range(20):
        k = rng.integers(1, 5, 2)
        pad = [int(rng.integers(0, v)) for v in k]
        params = "pool: %s kernel_h: %d kernel_w: %d stride_h: %d stride_w: %d " \
                 "pad_h: %d pad_w: %d" % ((method,) + tuple(k) + tuple(rng.integers(1, 4, 2))
                                          + tuple(pad))
        if rng.random() < 0.3:
            params += " round_mode: FLOOR"
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                 int(rng.integers(k[0], 10)), int(rng.integers(k[1], 10)))
        _check(params, shape, 1 + (method == "MAX"), TEST, np.float64)


def test_max_ties_pick_the_first_in_row_major_order():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = x[0, 0, 1, 1] = 3.0
    text = 'type: "Pooling" pooling_param { pool: MAX kernel_size: 3 stride: 1 }'
    for dtype in (np.float32, np.float64):
        assert_kernels_equal_numpy(text, [x], n_top=2, dtype=dtype)
    with launches():
        got = forward_backward(text, [x], n_top=2)
    np.testing.assert_array_equal(got["top 1"], 5.0)   # (1, 1) = 1 * W + 1 in every window


def test_every_pooling_kernel_is_used():
    seen = set()
    for params, shape, tops, phase in CASES:
        seen |= _check(params, shape, tops, phase, np.float64)
    assert seen == every_kernel("pooling")
