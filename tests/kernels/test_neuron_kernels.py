"""neuron.cu: every neuron layer and Dropout take their kernels (forward and
backward, in place where the layer allows it, slope gradients accumulated),
equal to the NumPy layers on odd shapes and empty batches in float32 and
float64, and every kernel of the family is used. Their golden cases and
gradient checks run through the kernels in tests/layers and tests/golden (the
``kernels`` backend of the ``xp`` fixture)."""
import numpy as np
import pytest

from pycaffe_lowbit.proto import caffe_pb2
from support.kernel_coverage import every_kernel
from support.kernel_vs_numpy import assert_kernels_equal_numpy

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # Power's 0 / 0, on both paths

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
# (layer text, in place allowed, whether x must be positive[, phase])
LAYERS = [
    ('type: "ReLU"', True, False),
    ('type: "ReLU" relu_param { negative_slope: 0.1 }', True, False),
    ('type: "Sigmoid"', True, False),
    ('type: "TanH"', True, False),
    ('type: "ELU" elu_param { alpha: 0.7 }', True, False),
    ('type: "AbsVal"', False, False),
    ('type: "BNLL"', True, False),
    ('type: "Power" power_param { power: 2 scale: 0.5 shift: 1 }', True, False),
    ('type: "Power" power_param { power: 1 scale: 3 shift: 1 }', True, False),
    ('type: "Power" power_param { power: 0.5 scale: 2 shift: 1 }', True, True),
    ('type: "Power" power_param { power: 3 scale: 1.5 }', True, False),
    ('type: "Power" power_param { power: 0 scale: 2 shift: 3 }', True, False),
    ('type: "Power" power_param { power: 2 scale: 0 shift: 3 }', True, False),
    ('type: "Exp"', True, False),
    ('type: "Exp" exp_param { base: 2 scale: 0.5 shift: 1 }', True, False),
    ('type: "Log"', True, True),
    ('type: "Log" log_param { base: 10 scale: 2 shift: 0.5 }', True, True),
    ('type: "Clip" clip_param { min: -0.5 max: 0.8 }', True, False),
    ('type: "Swish"', True, False),
    ('type: "Swish" swish_param { beta: 1.5 }', True, False),
    ('type: "PReLU"', True, False),
    ('type: "PReLU" prelu_param { channel_shared: true }', True, False),
    ('type: "PReLU" prelu_param { filler { type: "uniform" min: -1 max: 1 } }', True, False),
    ('type: "Dropout" dropout_param { dropout_ratio: 0.3 }', True, False),
    ('type: "Dropout" dropout_param { dropout_ratio: 0.3 scale_train: false }', True, False),
    ('type: "Dropout" dropout_param { dropout_ratio: 0.3 scale_train: false }', True, False,
     TEST),
]
SHAPES = [(2, 3, 4), (3, 5, 7, 3), (0, 3, 4), (1, 1)]
FORWARD_ONLY = ['type: "Threshold" threshold_param { threshold: 0.2 }']


def _x(shape, positive, dtype):
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    if x.size:
        x.reshape(-1)[0] = 0          # the kinks: x == 0 takes Caffe's branch
    return np.abs(x) + 0.1 if positive else x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("case", LAYERS, ids=lambda c: " ".join(str(v) for v in c))
def test_kernels_equal_numpy(case, shape, dtype):
    text, in_place_ok, positive, phase = (case + (TRAIN,))[:4]
    x = _x(shape, positive, dtype)
    for in_place in ([False, True] if in_place_ok else [False]):
        assert_kernels_equal_numpy(text, [x], dtype, in_place=in_place, phase=phase)


@pytest.mark.parametrize("in_place", [False, True])
def test_dropout_at_test_time_with_scale_train_is_a_copy(in_place):
    x = _x((2, 3), False, np.float32)
    assert_kernels_equal_numpy('type: "Dropout"', [x], in_place=in_place, phase=TEST,
                               expect_launch=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_only_layers(shape, dtype):
    for text in FORWARD_ONLY:
        for in_place in (False, True):
            assert_kernels_equal_numpy(text, [_x(shape, False, dtype)], dtype,
                                       in_place=in_place, backward=False)


def test_every_neuron_kernel_is_used():
    seen = set()
    x = _x((2, 3, 4), True, np.float32)
    for case in LAYERS:
        seen |= assert_kernels_equal_numpy(case[0], [x], phase=(case + (TRAIN,))[3])
    for text in FORWARD_ONLY:
        seen |= assert_kernels_equal_numpy(text, [x], backward=False)
    assert sorted(every_kernel("neuron") - seen) == []
    assert seen == every_kernel("neuron")
