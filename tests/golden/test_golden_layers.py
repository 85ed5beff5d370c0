"""Every single-layer case of official Caffe (tests/fixtures/golden/layers) matches to 1e-4,
on each backend (the ``xp`` fixture: NumPy, and CuPy where a GPU is present)."""
import numpy as np
import pytest

from support import golden

CASES = golden.list_cases("layers")


@pytest.mark.parametrize("case", CASES)
def test_layer_matches_caffe(case, xp):
    path = golden.case_path("layers", case)
    missing = golden.missing_types(str(np.load(path)["prototxt"]))
    if missing:
        pytest.skip("layer types not implemented yet (issue 3): %s" % ", ".join(missing))
    golden.run_case(path)
