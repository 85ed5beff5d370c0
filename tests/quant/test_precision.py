"""Quantizers state their precision: activation levels, weight bits."""
import numpy as np
import pytest

from pycaffe_lowbit import quant
from pycaffe_lowbit.quant.activations import level_bits
from pycaffe_lowbit.quant.qnn import QNNActivation, QNNWeights
from pycaffe_lowbit.quant.weight_search import VALUE_SETS, WeightSearch

X = np.linspace(-3, 3, 120001).astype(np.float32)


def test_level_bits():
    assert [level_bits(n) for n in (1, 2, 3, 4, 5, 8, 9, 16, 17)] == [1, 1, 2, 2, 3, 3, 4, 4, 5]


@pytest.mark.parametrize("value", [quant.Sign(), quant.HWGQ([0.538, 1.076, 1.614]),
                                   quant.HWGQ([0.453, 1.51], 0.1)]
                         + [QNNActivation(nb) for nb in range(5)]
                         + [QNNActivation(nb, "relu") for nb in range(1, 5)])
def test_activation_levels_are_the_values_forward_takes(value):
    assert np.array_equal(np.unique(value.forward(X)), np.float32(value.levels))


def test_continuous_activations_have_no_levels():
    assert quant.HardTanh().levels is None and quant.LeakyReLU(0.1).levels is None
    q = quant.ActivationQuantizer(quant.HWGQ([1.0]), quant.ReLUGrad())
    assert q.levels == (-0.0, 1.0)


@pytest.mark.parametrize("nb, symmetric", [(0, False), (1, False), (2, False), (2, True),
                                           (4, False), (4, True)])
def test_qnn_weight_bits_index_its_values(nb, symmetric):
    q = QNNWeights(nb, symmetric)
    w = np.linspace(-1, 1, 4001).astype(np.float32).reshape(1, -1)
    assert q.precision == level_bits(len(np.unique(q.forward(w))))


def test_weight_precisions():
    assert quant.BinaryWeights().precision == 1 and quant.TernaryWeights().precision == 2
    assert quant.StochasticSelection(quant.TernaryWeights(), 50).precision == 2
    assert {name: WeightSearch(v).precision for name, v in VALUE_SETS.items()} == \
        {"1b": 1, "po2-2b": 2, "po2-3b": 3, "po2-4b": 4}
