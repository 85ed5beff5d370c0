"""Property-based tests of every registered layer type (``caffe.layer_type_list()``):
random but schema-valid parameters and small bottoms, drawn by Hypothesis
(``support/cases_*.py``); each example must set up and pass forward, backward
and a float64 gradient check, or be refused with a ``LayerSetupError`` naming
the layer and a field (``support/properties.py``).

Profiles: ``support/hypothesis_profiles.py`` (ci by default; ``long`` with
``LOWBIT_HYPOTHESIS_PROFILE=long``). Examples per type and their outcomes
(ok / setup error / forward error):
``python -m pytest tests/layers/test_layer_properties.py --hypothesis-show-statistics``.
"""
import pytest

hypothesis = pytest.importorskip("hypothesis")
pytestmark = pytest.mark.property

from hypothesis import event, given, strategies as st  # noqa: E402

from pycaffe_lowbit.layers import layer_type_list  # noqa: E402
from support.layer_cases import CASES  # noqa: E402
from support.properties import check_case  # noqa: E402


def test_every_registered_type_has_a_strategy():
    assert sorted(CASES) == sorted(layer_type_list())


@pytest.mark.parametrize("type_name", sorted(CASES))
@given(data=st.data())
def test_layer_property(type_name, data):
    case = data.draw(CASES[type_name], label="case")
    event(check_case(type_name, case))      # "ok", "setup error" or "forward error"
