"""Python layers with pycaffe's interface: setup/reshape/forward/backward, param_str, blobs."""
import sys

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers.base import LayerSetupError

MODULE = '''
import numpy as np
import pycaffe_lowbit as caffe


class ScaleBy(caffe.Layer):
    """y = k * x with k from param_str, plus a learnable offset blob b."""

    def setup(self, bottom, top):
        self.k = float(self.param_str or 1)
        if len(bottom) != 1:
            raise Exception("ScaleBy needs one bottom")
        self.blobs.add_blob(1)
        self.blobs[0].data[...] = 0.5
        self.calls = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        self.calls += 1
        top[0].data[...] = self.k * bottom[0].data + self.blobs[0].data[0]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self.k * top[0].diff
        self.blobs[0].diff[0] += top[0].diff.sum()
'''

NET = """
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "py" type: "Python" bottom: "x" top: "y"
        python_param { module: "lowbit_test_pylayer" layer: "ScaleBy" param_str: "3" } }
layer { name: "loss" type: "EuclideanLoss" bottom: "y" bottom: "x" top: "loss" }
"""


@pytest.fixture
def pymodule(tmp_path, monkeypatch):
    (tmp_path / "lowbit_test_pylayer.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("lowbit_test_pylayer", None)


def test_python_layer_forward_backward(pymodule):
    net = caffe.Net(parse_net_text(NET), caffe.TRAIN)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    net.blobs["x"].data[...] = x
    net.forward()
    np.testing.assert_allclose(net.blobs["y"].data, 3 * x + 0.5)
    layer = net.layer_dict["py"]
    assert layer.type == "Python" and layer.calls == 1 and layer.k == 3.0
    assert list(net.params) == ["py"]
    net.clear_param_diffs()
    net.backward()
    d = (3 * x + 0.5 - x) / 2        # EuclideanLoss diff w.r.t. y
    np.testing.assert_allclose(net.params["py"][0].diff, [d.sum()], rtol=1e-5)


def test_python_layer_weights_roundtrip(pymodule, tmp_path):
    net = caffe.Net(parse_net_text(NET), caffe.TRAIN)
    net.params["py"][0].data[...] = 4.25
    path = str(tmp_path / "py.caffemodel")
    net.save(path)
    again = caffe.Net(parse_net_text(NET), path, caffe.TEST)
    assert again.params["py"][0].data[0] == 4.25


def test_missing_module_is_a_clear_error():
    bad = NET.replace("lowbit_test_pylayer", "no_such_module_xyz")
    with pytest.raises(LayerSetupError, match="layer 'py'.*no_such_module_xyz"):
        caffe.Net(parse_net_text(bad), caffe.TRAIN)
