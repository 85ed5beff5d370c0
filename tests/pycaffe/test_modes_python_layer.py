"""Python layers (``type: "Python"``) in CPU mode and in GPU mode on the CuPy
double (``pycaffe_mode``): the layer's ``bottom``/``top`` are pycaffe blobs
with NumPy ``data``/``diff`` in both modes.

The layers (written to a module in tmp_path, ``LAYERS``):

* ``Scaled``: top = f * bottom, f from the JSON ``param_str`` {"factor": f};
  backward bottom.diff = f * top.diff.
* ``TrainHalves``: top = bottom / 2 in TRAIN, bottom in TEST (``self.phase``).
* ``LearnedOffset``: top = bottom + b, b a learnable (C,) blob of its own;
  b.diff = sum over the batch of top.diff, bottom.diff = top.diff.
* ``Refuses``: its setup raises RuntimeError."""
import json
import sys

import numpy as np
import pytest

import pycaffe_lowbit as caffe

MODULE = "lowbit_modes_pylayers"
LAYERS = '''
import json

import pycaffe_lowbit as caffe


class Scaled(caffe.Layer):
    def setup(self, bottom, top):
        self.factor = float(json.loads(self.param_str)["factor"])

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.factor * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self.factor * top[0].diff


class TrainHalves(caffe.Layer):
    def setup(self, bottom, top):
        self.seen_phase = self.phase

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        keep = 0.5 if self.phase == caffe.TRAIN else 1.0
        top[0].data[...] = keep * bottom[0].data


class LearnedOffset(caffe.Layer):
    def setup(self, bottom, top):
        self.blobs.add_blob(bottom[0].data.shape[1])
        self.blobs[0].data[...] = 0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data + self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[...] += top[0].diff.sum(axis=0)
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff


class Refuses(caffe.Layer):
    def setup(self, bottom, top):
        raise RuntimeError("Refuses: this layer never sets up (param_str %r)" % self.param_str)

    def reshape(self, bottom, top):
        pass
'''


def python_layer(name, bottom, top, kind, param_str=None):
    param = ' param_str: %s' % json.dumps(param_str) if param_str is not None else ""
    return ('layer { name: "%s" type: "Python" bottom: "%s" top: "%s" '
            'python_param { module: "%s" layer: "%s"%s } }\n'
            % (name, bottom, top, MODULE, kind, param))


def feed_layer(shape):
    dims = " ".join("dim: %d" % d for d in shape)
    return 'layer { name: "feed" type: "Input" top: "x" input_param { shape { %s } } }\n' % dims


CHAIN = ("force_backward: true\n" + feed_layer((3, 4, 2))
         + python_layer("times3", "x", "x3", "Scaled", '{"factor": 3}')
         + python_layer("times_half", "x3", "y", "Scaled", '{"factor": -0.5}'))


@pytest.fixture
def layers_module(tmp_path, monkeypatch):
    (tmp_path / (MODULE + ".py")).write_text(LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop(MODULE, None)


def net_from(tmp_path, text, phase=caffe.TRAIN, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return caffe.Net(str(path), phase)


def test_python_layers_forward_and_backward(pycaffe_mode, layers_module, tmp_path):
    net = net_from(tmp_path, CHAIN)
    assert "Python" in caffe.layer_type_list()
    x = np.random.RandomState(0).randn(3, 4, 2).astype(np.float32)
    out = net.forward(x=x)
    np.testing.assert_allclose(out["y"], -1.5 * x, rtol=1e-6)
    np.testing.assert_allclose(net.blobs["x3"].data, 3 * x, rtol=1e-6)
    top_diff = np.full((3, 4, 2), 2, np.float32)
    grads = net.backward(y=top_diff)
    np.testing.assert_allclose(grads["x"], -1.5 * top_diff, rtol=1e-6)
    assert net.layer_dict["times3"].factor == 3.0
    assert net.layer_dict["times_half"].param_str == '{"factor": -0.5}'


def test_python_layers_follow_a_reshaped_input(pycaffe_mode, layers_module, tmp_path):
    net = net_from(tmp_path, CHAIN)
    net.blobs["x"].reshape(5, 1, 6)
    net.blobs["x"].data[...] = 1
    net.forward()
    for name in ("x", "x3", "y"):
        assert net.blobs[name].data.shape == (5, 1, 6)
    np.testing.assert_array_equal(net.blobs["y"].data, np.full((5, 1, 6), -1.5, np.float32))


def test_a_python_layer_sees_the_phase(pycaffe_mode, layers_module, tmp_path):
    text = feed_layer((2, 2)) + python_layer("gate", "x", "y", "TrainHalves")
    x = np.array([[2, 4], [6, 8]], np.float32)
    for phase, scale in ((caffe.TRAIN, 0.5), (caffe.TEST, 1.0)):
        net = net_from(tmp_path, text, phase)
        assert net.layer_dict["gate"].phase == phase
        assert net.layer_dict["gate"].seen_phase == phase
        np.testing.assert_array_equal(net.forward(x=x)["y"], scale * x)


def test_an_exception_in_setup_reaches_the_caller(pycaffe_mode, layers_module, tmp_path):
    text = feed_layer((2, 2)) + python_layer("broken", "x", "y", "Refuses", "why")
    with pytest.raises(RuntimeError, match="Refuses: this layer never sets up"):
        net_from(tmp_path, text)


OFFSET = ('layer { name: "feed" type: "Input" top: "x" top: "target"\n'
          '        input_param { shape { dim: 6 dim: 3 } shape { dim: 6 dim: 3 } } }\n'
          + python_layer("offset", "x", "shifted", "LearnedOffset")
          + 'layer { name: "loss" type: "EuclideanLoss" bottom: "shifted" bottom: "target" '
          'top: "loss" }\n')
GOAL = np.array([1.0, -2.0, 3.0], np.float32)


def test_a_python_layers_own_blobs_are_learned_and_saved(pycaffe_mode, layers_module,
                                                          tmp_path):
    (tmp_path / "offset.prototxt").write_text(OFFSET)
    (tmp_path / "solver.prototxt").write_text(
        'net: "%s" base_lr: 0.5 lr_policy: "fixed" max_iter: 100 display: 0 '
        'snapshot_prefix: "%s"' % (tmp_path / "offset.prototxt", tmp_path / "offset"))
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    net = solver.net
    assert list(net.params) == ["offset"] and net.params["offset"][0].data.shape == (3,)
    x = np.random.RandomState(1).randn(6, 3).astype(np.float32)
    net.blobs["x"].data[...] = x
    net.blobs["target"].data[...] = x + GOAL
    solver.step(40)
    np.testing.assert_allclose(net.params["offset"][0].data, GOAL, atol=1e-3)
    layer = net.layer_dict["offset"]
    np.testing.assert_array_equal(layer.blobs[0].data, net.params["offset"][0].data)

    weights = str(tmp_path / "offset.caffemodel")
    net.save(weights)
    learned = net.params["offset"][0].data.copy()
    net.params["offset"][0].data[...] = -7
    net.copy_from(weights)
    np.testing.assert_array_equal(net.params["offset"][0].data, learned)

    other = caffe.Net(str(tmp_path / "offset.prototxt"), caffe.TEST)
    assert not other.params["offset"][0].data.any()
    other.share_with(net)
    np.testing.assert_array_equal(other.params["offset"][0].data, learned)
    out = other.forward(x=x, target=x + GOAL)
    assert float(out["loss"]) < 1e-5
