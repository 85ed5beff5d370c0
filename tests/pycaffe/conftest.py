"""The ``pycaffe_mode`` fixture: a test of the pycaffe API runs once in CPU
mode and once in GPU mode on the strict CuPy double (tests/support/cupy_double),
where blobs live on the "device" and pycaffe hands out NumPy host views.

The double param is marked ``double`` and exists only with
``LOWBIT_TEST_DOUBLE=1`` (as tests/conftest.py's ``xp`` fixture does); .ci/run's
double pass selects it with ``-m double``."""
import os

import pytest

_MODES = [pytest.param("cpu", id="cpu")]
if os.environ.get("LOWBIT_TEST_DOUBLE"):
    _MODES.append(pytest.param("gpu", id="double", marks=pytest.mark.double))


@pytest.fixture(params=_MODES)
def pycaffe_mode(request):
    """"cpu" or "gpu"; the library is in that mode for the test (GPU mode on
    the double, seeded as the ``cupy_double`` fixture seeds it)."""
    if request.param == "gpu":
        request.getfixturevalue("cupy_double")
    return request.param
