"""normalization.cu: BatchNorm (batch statistics with moving averages, and the
stored statistics), Scale / Bias (learned or bottom[1] operand, any axis and
num_axes, the fused bias term, in place) and MVN take their kernels, equal to
the NumPy layers on odd shapes and empty batches in float32 and float64, and
every kernel of the family is used. Golden cases and gradient checks run
through the kernels in tests/layers and tests/golden."""
import numpy as np
import pytest

from pycaffe_lowbit.proto import caffe_pb2
from support.kernel_coverage import every_kernel
from support.kernel_vs_numpy import assert_kernels_equal_numpy

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
DTYPES = [np.float32, np.float64]


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _stats(channels, scale_factor):
    rng = np.random.default_rng(5)
    return [rng.standard_normal(channels), rng.uniform(0.5, 2, channels), [scale_factor]]


# (text, phase, in place)
BATCH_NORM = [
    ('type: "BatchNorm"', TRAIN, False),
    ('type: "BatchNorm"', TRAIN, True),
    ('type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 eps: 0.01 }',
     TRAIN, False),
    ('type: "BatchNorm"', TEST, False),
    ('type: "BatchNorm"', TEST, True),
    ('type: "BatchNorm" batch_norm_param { use_global_stats: true }', TRAIN, False),
    ('type: "BatchNorm" batch_norm_param { use_global_stats: false }', TEST, False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 5), (1, 1, 7), (5, 3, 2, 3)])
@pytest.mark.parametrize("text, phase, in_place", BATCH_NORM)
@pytest.mark.parametrize("scale_factor", [2.5, 0.0])
def test_batch_norm(text, phase, in_place, shape, dtype, scale_factor):
    assert_kernels_equal_numpy(text, [_rand(shape)], dtype, phase=phase, in_place=in_place,
                               params=_stats(shape[1], scale_factor))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_empty_batch_with_stored_statistics(dtype):
    assert_kernels_equal_numpy('type: "BatchNorm"', [np.zeros((0, 3, 4))], dtype, phase=TEST,
                               params=_stats(3, 2.0))


# (text, bottom shapes, in place)
SCALE_BIAS = [
    ('type: "Scale"', [(2, 3, 4, 5)], False),
    ('type: "Scale"', [(2, 3, 4, 5)], True),
    ('type: "Scale" scale_param { bias_term: true filler { type: "gaussian" } '
     'bias_filler { type: "gaussian" } }', [(2, 3, 4, 5)], False),
    ('type: "Scale" scale_param { bias_term: true filler { type: "gaussian" } '
     'bias_filler { type: "gaussian" } }', [(2, 3, 4, 5)], True),
    ('type: "Scale" scale_param { axis: 1 num_axes: 2 filler { type: "gaussian" } }',
     [(3, 5, 7, 3)], False),
    ('type: "Scale" scale_param { axis: -1 num_axes: -1 filler { type: "gaussian" } }',
     [(3, 5, 7)], False),
    ('type: "Scale" scale_param { num_axes: 0 filler { type: "constant" value: 1.5 } }',
     [(3, 5, 2)], False),
    ('type: "Scale" scale_param { axis: 0 }', [(3, 5, 2), (3, 5)], False),
    ('type: "Scale" scale_param { axis: 1 bias_term: true bias_filler { type: "gaussian" } }',
     [(2, 3, 4), (3, 4)], False),
    ('type: "Scale"', [(2, 3, 4), (3,)], True),
    ('type: "Scale"', [(0, 3, 4), (3,)], False),
    ('type: "Scale"', [(0, 3, 4)], False),
    ('type: "Bias" bias_param { filler { type: "gaussian" } }', [(2, 3, 4, 5)], False),
    ('type: "Bias" bias_param { filler { type: "gaussian" } }', [(2, 3, 4, 5)], True),
    ('type: "Bias" bias_param { axis: 2 num_axes: 2 filler { type: "gaussian" } }',
     [(3, 5, 7, 3)], False),
    ('type: "Bias" bias_param { num_axes: 0 filler { type: "gaussian" } }', [(3, 5)], False),
    ('type: "Bias"', [(2, 3, 4, 5), (3, 4)], False),
    ('type: "Bias"', [(2, 3, 4), (3,)], True),
    ('type: "Bias"', [(0, 3, 4), (3,)], False),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("text, shapes, in_place", SCALE_BIAS)
def test_scale_and_bias(text, shapes, in_place, dtype):
    bottoms = [_rand(s, seed=i) for i, s in enumerate(shapes)]
    assert_kernels_equal_numpy(text, bottoms, dtype, in_place=in_place)


def test_scale_without_gradients_to_its_operand():
    bottoms = [_rand((2, 3, 4)), _rand((3,), 1)]
    assert_kernels_equal_numpy('type: "Scale"', bottoms, propagate=[True, False])
    assert_kernels_equal_numpy('type: "Bias"', bottoms, propagate=[True, False])


MVN = ['type: "MVN"', 'type: "MVN" mvn_param { across_channels: true }',
       'type: "MVN" mvn_param { normalize_variance: false }',
       'type: "MVN" mvn_param { normalize_variance: false across_channels: true }',
       'type: "MVN" mvn_param { eps: 0.1 }']


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 5), (1, 1, 7, 3), (0, 3, 2, 2)])
@pytest.mark.parametrize("text", MVN)
def test_mvn(text, shape, dtype):
    assert_kernels_equal_numpy(text, [_rand(shape)], dtype)


def test_every_normalization_kernel_is_used():
    seen = set()
    for text, phase, in_place in BATCH_NORM:
        seen |= assert_kernels_equal_numpy(text, [_rand((2, 3, 4))], phase=phase,
                                           in_place=in_place, params=_stats(3, 2.0))
    for text, shapes, in_place in SCALE_BIAS:
        seen |= assert_kernels_equal_numpy(text, [_rand(s) for s in shapes], in_place=in_place)
    for text in MVN:
        seen |= assert_kernels_equal_numpy(text, [_rand((2, 3, 4, 5))])
    assert sorted(every_kernel("normalization") - seen) == []
    assert seen == every_kernel("normalization")
