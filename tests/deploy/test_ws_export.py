"""Exporting a searched net: plain layers, in-set weights, the same TEST outputs."""
import os
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats import caffemodel, text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.deploy.ws_export import ExportError, check_in_set, export_searched
from support import paths

ROOT = paths.ROOT

SEARCHED = """
name: 'searched'
layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 3 dim: 2 dim: 6 dim: 6 } } }
layer { name: 'conv' type: 'WeightSearchConvolution' bottom: 'data' top: 'conv'
  weight_search_param { value_set: 'po2-3b' mode: SOFT }
  convolution_param { num_output: 4 kernel_size: 3 bias_term: false } }
layer { name: 'relu' type: 'ReLU' bottom: 'conv' top: 'conv' }
layer { name: 'fc' type: 'WeightSearchInnerProduct' bottom: 'conv' top: 'fc'
  weight_search_param { value: -1 value: 0 value: 1 }
  inner_product_param { num_output: 5 bias_filler { type: 'gaussian' } } }
"""


def _searched_net(tmp_path):
    model = text_format.Parse(SEARCHED, caffe_pb2.NetParameter())
    net = caffe.Net(model, caffe.TEST)
    rng = np.random.default_rng(0)
    for name in ("conv", "fc"):
        a = net.params[name][0].data
        a[...] = rng.normal(size=a.shape)
    path = str(tmp_path / "searched.caffemodel")
    net.save(path)
    return model, net, path


def test_export_gives_in_set_weights_and_the_hard_outputs(tmp_path):
    model, net, path = _searched_net(tmp_path)
    x = np.random.default_rng(1).normal(size=(3, 2, 6, 6)).astype(np.float32)
    expect = net.forward(data=x)["fc"].copy()
    plain, weights = export_searched(model, caffemodel.read_net_binary(path))
    assert [lp.type for lp in plain.layer] == ["Input", "Convolution", "ReLU", "InnerProduct"]
    assert not any(lp.HasField("weight_search_param") for lp in plain.layer)
    assert all(outside == 0 for _, _, outside, _ in check_in_set(model, weights))
    plain_path = str(tmp_path / "plain.caffemodel")
    caffemodel.write_net_binary(weights, plain_path)
    plain_net = caffe.Net(plain, plain_path, caffe.TEST)
    assert plain_net.params["conv"][0].data.shape == (4, 2, 3, 3)
    assert set(np.unique(plain_net.params["fc"][0].data)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(plain_net.forward(data=x)["fc"], expect)


def test_check_reports_values_outside_the_set(tmp_path):
    model, _, path = _searched_net(tmp_path)
    _, weights = export_searched(model, caffemodel.read_net_binary(path))
    weights.layer[1].blobs[0].data[0] = 0.3
    report = dict((name, outside) for name, _, outside, _ in check_in_set(model, weights))
    assert report == {"conv": 1, "fc": 0}


def test_export_errors_name_the_layer(tmp_path):
    model, _, path = _searched_net(tmp_path)
    weights = caffemodel.read_net_binary(path)
    model.layer[3].weight_search_param.value.append(2)          # 4 values, logits have 3
    with pytest.raises(ExportError, match="layer 'fc': logits of shape"):
        export_searched(model, weights)
    del weights.layer[3]
    model.layer[3].weight_search_param.ClearField("value")
    model.layer[3].weight_search_param.value_set = "1b"
    with pytest.raises(ExportError, match="no layer named fc"):
        export_searched(model, weights)


def test_tool_exports_and_checks(tmp_path):
    model, _, path = _searched_net(tmp_path)
    prototxt = str(tmp_path / "searched.prototxt")
    text.write_text(model, prototxt)
    out_model, out_weights = str(tmp_path / "p.prototxt"), str(tmp_path / "p.caffemodel")
    tool = os.path.join(ROOT, "tools", "ws_export.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    run = subprocess.run([sys.executable, tool, prototxt, path, out_model, out_weights],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    assert "layer conv: 72 weights, all in {-0.25, -0.5, -1, -2, 2, 1, 0.5, 0.25}" in run.stdout
    check = subprocess.run([sys.executable, tool, "--check", prototxt, out_weights],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 0 and "layer fc: 320 weights, all in {-1, 0, 1}" in check.stdout
    bad = subprocess.run([sys.executable, tool, "--check", prototxt, path],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "NOT in" in bad.stdout     # the logits are not values
