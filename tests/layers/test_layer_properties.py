"""Property-based tests of every registered layer type (``caffe.layer_type_list()``):
random but schema-valid parameters and small bottoms, drawn by Hypothesis
(``support/cases_*.py``); each example must set up and pass forward, backward
and a float64 gradient check, or be refused with a ``LayerSetupError`` naming
the layer and a field (``support/properties.py``).

Profiles: ``support/hypothesis_profiles.py`` (ci by default; ``long`` with
``LOWBIT_HYPOTHESIS_PROFILE=long``). Counts per type:
``python -m pytest tests/layers/test_layer_properties.py --hypothesis-show-statistics``.
"""
import pytest

hypothesis = pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402

from pycaffe_lowbit.layers import layer_type_list  # noqa: E402
from support.hypothesis_profiles import examples  # noqa: E402
from support.layer_cases import CASES, WEIGHTS  # noqa: E402
from support.properties import check_case  # noqa: E402


def test_every_registered_type_has_a_strategy():
    assert sorted(CASES) == sorted(layer_type_list())


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_layer_property(type_name):
    @settings(max_examples=examples(WEIGHTS.get(type_name, 1.0)))
    @given(CASES[type_name])
    def holds(case):
        check_case(type_name, case)
    holds()
