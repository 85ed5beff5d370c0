"""Whole nets (LeNet, CIFAR-10 quick/full, a BatchNorm net) match official Caffe,
from the golden weights, and through .caffemodel loading."""
import os

import numpy as np
import pytest

from support import golden
import pycaffe_lowbit as caffe

CASES = golden.list_cases("nets")


@pytest.mark.parametrize("case", CASES)
def test_net_matches_caffe(case, xp):
    golden.run_case(golden.case_path("nets", case))


@pytest.mark.parametrize("case", CASES)
def test_net_from_caffemodel_matches_caffe(case):
    """The weights come from Caffe's .caffemodel instead of the npz."""
    base = os.path.join(golden.GOLDEN, "nets", case)
    d = np.load(base + ".npz")
    phase = caffe.TRAIN if str(d["phase"]) == "TRAIN" else caffe.TEST
    net = caffe.Net(base + ".prototxt", base + ".caffemodel", phase)
    for k in d.files:
        if k.startswith("param__"):
            _, layer, i = k.split("__")
            np.testing.assert_array_equal(net.params[layer][int(i)].data, d[k], err_msg=k)
    out = net.forward(data=d["in__data"], label=d["in__label"])
    for name in net.outputs:
        golden.assert_close(out[name], d["out__" + name], name)


@pytest.mark.parametrize("case", ["v1_net", "v0_net"])
def test_legacy_net_matches_caffe(case, xp):
    golden.run_case(golden.case_path("io", case))
