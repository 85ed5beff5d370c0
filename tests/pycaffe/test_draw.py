"""caffe.draw (pydot graph of a NetParameter) and `lowbit-caffe draw`."""
import os
import shutil
import subprocess
import sys

import pytest

from google.protobuf import text_format

import pycaffe_lowbit as caffe
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

pydot = pytest.importorskip("pydot", reason="caffe.draw needs pydot")
from pycaffe_lowbit.pycaffe import draw  # noqa: E402

ROOT = paths.ROOT
LENET = os.path.join(ROOT, "models", "lenet", "lenet_deploy.prototxt")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` not installed (apt-get install graphviz)")

NET = """
name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label"
        data_param { batch_size: 8 } include { phase: TRAIN } }
layer { name: "input" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } shape { dim: 1 } }
        include { phase: TEST } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: AVE kernel_h: 2 kernel_w: 3 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool1" top: "ip"
        inner_product_param { num_output: 10 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
        exclude { phase: TEST } }
"""


def net_param():
    return text_format.Parse(NET, caffe_pb2.NetParameter())


def node_attrs(graph):
    return {n.get_name().strip('"'): n.get_attributes() for n in graph.get_nodes()}


def edges(graph):
    return {(e.get_source().strip('"'), e.get_destination().strip('"')): e.get("label")
            for e in graph.get_edges()}


def test_graph_nodes_styles_and_labels():
    g = draw.get_pydot_graph(net_param(), "LR")
    assert g.get_name().strip('"') == "tiny" and g.get("rankdir") == "LR"
    nodes = node_attrs(g)
    layers = {"data_Data", "input_Input", "conv1_Convolution", "relu1_ReLU",
              "pool1_Pooling", "ip_InnerProduct", "loss_SoftmaxWithLoss"}
    blobs = {"data_blob", "label_blob", "conv1_blob", "pool1_blob", "ip_blob", "loss_blob"}
    assert set(nodes) == layers | blobs
    for b in blobs:
        assert nodes[b]["shape"] == "octagon"
    for name in layers:
        assert nodes[name]["shape"] == "record"
    assert nodes["conv1_Convolution"].get("fillcolor").strip('"') == "#FF5050"
    assert nodes["pool1_Pooling"].get("fillcolor").strip('"') == "#FF9900"
    assert nodes["ip_InnerProduct"].get("fillcolor").strip('"') == "#CC33FF"
    assert nodes["relu1_ReLU"].get("fillcolor").strip('"') == "#90EE90"  # in place
    assert nodes["loss_SoftmaxWithLoss"].get("fillcolor").strip('"') == "#6495ED"
    assert nodes["conv1_Convolution"]["label"] == (
        r'"conv1\n(Convolution)\nkernel size: 3\nstride: 2\npad: 1"')
    assert nodes["pool1_Pooling"]["label"] == r'"pool1\n(Pooling AVE)\nkernel size: 2x3\nstride: 2\npad: 0"'
    tb = node_attrs(draw.get_pydot_graph(net_param(), "TB"))
    assert tb["ip_InnerProduct"]["label"] == '"ip (InnerProduct)"'


def test_graph_edges_in_place_and_edge_labels():
    e = edges(draw.get_pydot_graph(net_param(), "LR"))
    assert e[("data_Data", "data_blob")] == '"Batch 8"'
    assert e[("conv1_Convolution", "conv1_blob")] == '"4"'
    assert e[("ip_InnerProduct", "ip_blob")] == '"10"'
    assert e[("conv1_blob", "relu1_ReLU")] == '""'
    assert ("relu1_ReLU", "conv1_blob") in e  # in-place: out to the same blob
    assert ("label_blob", "loss_SoftmaxWithLoss") in e
    unlabeled = edges(draw.get_pydot_graph(net_param(), "LR", label_edges=False))
    assert unlabeled[("conv1_Convolution", "conv1_blob")] == '""'


def test_graph_phase_filter_and_lr_mult():
    train = node_attrs(draw.get_pydot_graph(net_param(), "LR", phase=caffe.TRAIN))
    test = node_attrs(draw.get_pydot_graph(net_param(), "LR", phase=caffe.TEST))
    assert "data_Data" in train and "input_Input" not in train and "loss_SoftmaxWithLoss" in train
    assert "input_Input" in test and "data_Data" not in test and "loss_SoftmaxWithLoss" not in test
    lrm = node_attrs(draw.get_pydot_graph(net_param(), "LR", display_lrm=True))
    assert lrm["conv1_Convolution"]["label"].endswith(r'\nlr mult: 1.0, 2.0"')
    assert lrm["ip_InnerProduct"]["label"].endswith(r'\nlr mult: 1.0, 1.0"')
    bad = net_param()
    bad.layer[2].include.add(phase=caffe.TRAIN)
    bad.layer[2].exclude.add(phase=caffe.TEST)
    with pytest.raises(ValueError, match="both include and exclude"):
        draw.get_pydot_graph(bad, "LR", phase=caffe.TRAIN)


def test_odd_names_are_escaped_and_raw_output_needs_no_graphviz(tmp_path):
    net = net_param()
    net.layer[5].name = 'ip "a|b" {c}'
    out = tmp_path / "net.raw"
    draw.draw_net_to_file(net, str(out))
    text = out.read_text()
    assert text.startswith("digraph") and r'ip \"a\|b\" \{c\}' in text


@needs_dot
def test_draw_net_to_file_writes_png(tmp_path):
    out = tmp_path / "lenet.png"
    draw.draw_net_to_file(LENET, str(out), rankdir="TB")  # a path works too
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert draw.draw_net(net_param(), "LR", ext="svg").lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="could not draw format 'xyz'"):
        draw.draw_net(net_param(), "LR", ext="xyz")


def test_missing_dot_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="install graphviz"):
        draw.draw_net(net_param(), "LR")


@needs_dot
def test_cli_draw(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text(NET)
    out = tmp_path / "net.png"
    run = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "draw", str(proto),
                          str(out), "--rankdir", "TB", "--phase", "TEST"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_cli_draw_flags_and_missing_file(tmp_path):
    from pycaffe_lowbit import cli
    args = cli.build_parser().parse_args(["draw", "a.prototxt", "b.png", "-rankdir=BT",
                                          "--phase", "TRAIN", "--display_lrm"])
    assert (args.input_net_proto_file, args.output_image_file, args.rankdir, args.phase,
            args.display_lrm) == ("a.prototxt", "b.png", "BT", "TRAIN", True)
    default = cli.build_parser().parse_args(["draw", "a.prototxt", "b.png"])
    assert default.rankdir == "LR" and default.phase == "ALL" and not default.display_lrm
    run = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "draw",
                          str(tmp_path / "nope.prototxt"), str(tmp_path / "x.png")],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode != 0 and "nope.prototxt" in run.stderr
    assert "Traceback" not in run.stderr
