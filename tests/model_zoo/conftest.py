"""The ``texts`` fixture: every generated file of models/, rendered once per module."""
import pytest

from pycaffe_lowbit import model_zoo
from support.zoo import MODELS


@pytest.fixture(scope="module")
def texts():
    return model_zoo.render(MODELS)
