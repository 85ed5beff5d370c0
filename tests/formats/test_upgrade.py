"""io.upgrade: Caffe's upgrade_proto, checked against Caffe's own upgraded files."""
import glob
import logging
import os
import re

import pytest
from google.protobuf import text_format

from pycaffe_lowbit.formats import text, upgrade
from pycaffe_lowbit.formats.upgrade import UpgradeError
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

GOLDEN_IO = os.path.join(paths.GOLDEN, "io")
SEEDS = paths.SEEDS
V1 = caffe_pb2.V1LayerParameter


def raw(src):
    """A NetParameter parsed without upgrade."""
    return text_format.Parse(src, caffe_pb2.NetParameter())


def golden(name):
    return text.read_net_param(os.path.join(GOLDEN_IO, name), upgrade_net=False)


@pytest.mark.parametrize("name", ["v1_net", "v0_net"])
def test_golden_text_upgrade_equals_caffe(name):
    ours = text.read_net_param(os.path.join(GOLDEN_IO, name + ".prototxt"))
    assert ours == golden(name + ".upgraded.prototxt")


def test_logs_what_caffe_logs(caplog):
    with caplog.at_level(logging.INFO, "pycaffe_lowbit"):
        text.read_net_param(os.path.join(GOLDEN_IO, "v1_net.prototxt"))
    with open(os.path.join(GOLDEN_IO, "v1_net.upgrade.log")) as f:
        caffe_lines = [line.split("] ", 1)[1].rstrip("\n") for line in f
                       if "upgrade_proto.cpp" in line]
    ours = [r.getMessage() for r in caplog.records]
    assert [m.replace(os.path.join(GOLDEN_IO, ""), "") for m in ours] == caffe_lines


def test_needs_upgrade_and_input_left_alone():
    v1 = raw(open(os.path.join(GOLDEN_IO, "v1_net.prototxt")).read())
    before = v1.SerializeToString()
    assert upgrade.net_needs_upgrade(v1)
    up = upgrade.upgrade_net(v1, "v1")
    assert v1.SerializeToString() == before
    assert not upgrade.net_needs_upgrade(up)
    assert upgrade.upgrade_net(up) == up


def test_every_v1_type_has_caffes_name():
    for value in V1.LayerType.values():
        upgrade.v1_layer_type_name(value)  # none missing
    assert upgrade.v1_layer_type_name(V1.SOFTMAX_LOSS) == "SoftmaxWithLoss"
    assert upgrade.v1_layer_type_name(V1.TANH) == "TanH"
    assert upgrade.v1_layer_type_name(V1.IM2COL) == "Im2col"
    assert upgrade.v1_layer_type_name(V1.NONE) == ""
    with pytest.raises(UpgradeError):
        upgrade.v1_layer_type_name(999)


def test_every_v1_param_message_is_carried_over():
    fields = V1.DESCRIPTOR.fields
    params = {f.name for f in fields if f.message_type is not None and f.name.endswith("_param")}
    assert params == set(upgrade._V1_PARAMS)


def test_v1_layer_fields():
    net = upgrade.upgrade_net(raw("""
      layers {
        name: "c" type: CONVOLUTION bottom: "a" top: "b"
        param: "w" param: "" blob_share_mode: PERMISSIVE
        blobs_lr: 1 blobs_lr: 2 blobs_lr: 3 weight_decay: 0
        loss_weight: 0.5
        include { phase: TEST } exclude { stage: "s" }
        blobs { num: 1 channels: 1 height: 1 width: 2 data: 1 data: 2 }
        convolution_param { num_output: 2 kernel_size: 1 }
        transform_param { scale: 0.5 }
        loss_param { ignore_label: 3 }
      }"""))
    layer = net.layer[0]
    assert layer.type == "Convolution" and list(layer.bottom) == ["a"]
    specs = [(p.name, p.share_mode, p.lr_mult, p.decay_mult, p.HasField("decay_mult"))
             for p in layer.param]
    assert specs == [("w", caffe_pb2.ParamSpec.PERMISSIVE, 1, 0, True),
                     ("", caffe_pb2.ParamSpec.STRICT, 2, 1, False),
                     ("", caffe_pb2.ParamSpec.STRICT, 3, 1, False)]
    assert list(layer.loss_weight) == [0.5]
    assert layer.include[0].phase == caffe_pb2.TEST and layer.exclude[0].stage == ["s"]
    assert list(layer.blobs[0].data) == [1, 2] and layer.blobs[0].width == 2
    assert layer.convolution_param.num_output == 2
    assert layer.transform_param.scale == 0.5 and layer.loss_param.ignore_label == 3
    assert len(net.layers) == 0


def test_v1_with_layer_fields_drops_them_and_logs(caplog):
    with caplog.at_level(logging.ERROR, "pycaffe_lowbit"):
        net = upgrade.upgrade_net(raw('layer { name: "new" } layers { name: "old" type: RELU }'))
    assert [l.name for l in net.layer] == ["old"]
    assert "already specifies 'layer' fields" in caplog.text


def test_data_transformation_fields_move_to_transform_param(caplog):
    with caplog.at_level(logging.INFO, "pycaffe_lowbit"):
        net = upgrade.upgrade_net(raw("""
          layers { name: "d" type: DATA top: "x"
                   data_param { source: "db" batch_size: 4 scale: 0.5 mean_file: "m"
                                crop_size: 3 mirror: true } }
          layers { name: "i" type: IMAGE_DATA top: "y" image_data_param { scale: 2 } }
          layers { name: "w" type: WINDOW_DATA top: "z" window_data_param { mirror: false } }
        """), "data.prototxt")
    d, i, w = net.layer
    assert d.type == "Data" and d.data_param.source == "db" and d.data_param.batch_size == 4
    assert not any(d.data_param.HasField(f) for f in ("scale", "mean_file", "crop_size", "mirror"))
    t = d.transform_param
    assert (t.scale, t.mean_file, t.crop_size, t.mirror) == (0.5, "m", 3, True)
    assert i.transform_param.scale == 2 and not i.image_data_param.HasField("scale")
    assert w.transform_param.HasField("mirror") and not w.transform_param.mirror
    assert ("deprecated transformation parameters: data.prototxt" in caplog.text)


V0_DATA = """
input: "x"
layers { layer { name: "data" type: "data" source: "db" meanfile: "m.binaryproto"
                 batchsize: 8 cropsize: 4 mirror: true scale: 0.25 rand_skip: 3 }
         top: "d" top: "label" }
layers { layer { name: "pad" type: "padding" pad: 2 } bottom: "d" top: "dp" }
layers { layer { name: "pool" type: "pool" pool: AVE kernelsize: 3 stride: 2 }
         bottom: "dp" top: "p" }
layers { layer { name: "norm" type: "lrn" local_size: 3 alpha: 0.1 beta: 0.5 k: 2 }
         bottom: "p" top: "n" }
layers { layer { name: "conv" type: "conv" num_output: 2 kernelsize: 3 group: 2 biasterm: false }
         bottom: "n" top: "c" }
layers { layer { name: "drop" type: "dropout" dropout_ratio: 0.3 } bottom: "c" top: "c" }
layers { layer { name: "cat" type: "concat" concat_dim: 0 } bottom: "c" bottom: "x" top: "cat" }
layers { layer { name: "loss" type: "softmax_loss" } bottom: "cat" bottom: "label" }
"""


def test_v0_layers():
    net = upgrade.upgrade_net(raw(V0_DATA), "v0")
    by_name = {l.name: l for l in net.layer}
    assert [l.name for l in net.layer] == ["data", "pool", "norm", "conv", "drop", "cat", "loss"]
    data = by_name["data"]
    assert data.type == "Data"
    assert (data.data_param.source, data.data_param.batch_size, data.data_param.rand_skip) == \
        ("db", 8, 3)
    t = data.transform_param
    assert (t.mean_file, t.crop_size, t.mirror, t.scale) == ("m.binaryproto", 4, True, 0.25)
    pool = by_name["pool"]
    assert list(pool.bottom) == ["d"]                      # padding layer folded away
    assert (pool.pooling_param.pad, pool.pooling_param.kernel_size,
            pool.pooling_param.stride, pool.pooling_param.pool) == \
        (2, 3, 2, caffe_pb2.PoolingParameter.AVE)
    lrn = by_name["norm"].lrn_param
    assert (lrn.local_size, lrn.alpha, lrn.beta, lrn.k) == (3, pytest.approx(0.1), 0.5, 2)
    conv = by_name["conv"].convolution_param
    assert (conv.num_output, list(conv.kernel_size), conv.group, conv.bias_term) == \
        (2, [3], 2, False)
    assert by_name["drop"].dropout_param.dropout_ratio == pytest.approx(0.3)
    assert by_name["cat"].concat_param.concat_dim == 0
    assert by_name["loss"].type == "SoftmaxWithLoss"
    # the input has no dims: like an old .caffemodel, it is simply dropped
    assert len(net.input) == 0 and net.layer[0].type != "Input"


def test_v0_unknown_parameter_logs_and_continues(caplog):
    with caplog.at_level(logging.ERROR, "pycaffe_lowbit"):
        net = upgrade.upgrade_net(raw(
            'input: "x" layers { layer { name: "r" type: "relu" num_output: 3 } '
            'bottom: "x" top: "y" }'))
    assert net.layer[0].type == "ReLU"
    assert "Unknown parameter num_output for layer type relu" in caplog.text
    assert "had one or more problems upgrading V0NetParameter" in caplog.text


@pytest.mark.parametrize("src, message", [
    ('layers { layer { name: "q" type: "quux" } }', "unknown V0 layer type 'quux' (layer 'q')"),
    ('layers { layer { name: "r" type: "relu" } bottom: "nowhere" }',
     "unknown blob input 'nowhere' to layer 0 ('r')"),
    ('input: "x" layers { layer { name: "p" type: "padding" pad: 1 } bottom: "x" top: "y" } '
     'layers { layer { name: "r" type: "relu" } bottom: "y" top: "z" }',
     "padding layer 'p' feeds layer 'r' of type 'relu'"),
])
def test_v0_errors_name_source_and_layer(src, message):
    with pytest.raises(UpgradeError) as info:
        upgrade.upgrade_net(raw(src), "old.prototxt")
    assert str(info.value).startswith("old.prototxt: ")
    assert message in str(info.value)


def test_input_shape_and_several_inputs():
    net = upgrade.upgrade_net(raw("""
      input: "a" input: "b"
      input_shape { dim: 1 dim: 2 } input_shape { dim: 3 }
      layer { name: "l" type: "Eltwise" bottom: "a" bottom: "b" top: "c" }"""))
    first = net.layer[0]
    assert (first.name, first.type, list(first.top)) == ("input", "Input", ["a", "b"])
    assert [list(s.dim) for s in first.input_param.shape] == [[1, 2], [3]]
    assert [l.name for l in net.layer] == ["input", "l"]
    assert not (net.input or net.input_shape or net.input_dim)


@pytest.mark.parametrize("src, message", [
    ('input: "a" input: "b" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4',
     "2 inputs need 8 input_dim values (4 each), found 4"),
    ('input: "a" input: "b" input_shape { dim: 1 }', "2 inputs but only 1 input_shape"),
])
def test_input_count_mismatch(src, message):
    with pytest.raises(UpgradeError, match=re.escape("in.prototxt: " + message)):
        upgrade.upgrade_net(raw(src), "in.prototxt")


def test_batchnorm_with_three_param_specs():
    net = upgrade.upgrade_net(raw("""
      layer { name: "bn" type: "BatchNorm"
              param { lr_mult: 0 } param { lr_mult: 0 name: "v" } param { lr_mult: 1 } }
      layer { name: "bn1" type: "BatchNorm" param { lr_mult: 1 } }"""))
    bn, bn1 = net.layer
    assert [(p.name, p.lr_mult, p.decay_mult) for p in bn.param] == \
        [("", 0, 0), ("v", 0, 0), ("", 0, 0)]
    assert [(p.lr_mult, p.HasField("decay_mult")) for p in bn1.param] == [(1, False)]


@pytest.mark.parametrize("value, name", [
    ("SGD", "SGD"), ("NESTEROV", "Nesterov"), ("ADAGRAD", "AdaGrad"),
    ("RMSPROP", "RMSProp"), ("ADADELTA", "AdaDelta"), ("ADAM", "Adam")])
def test_solver_type(value, name):
    solver = text_format.Parse("solver_type: %s" % value, caffe_pb2.SolverParameter())
    up = upgrade.upgrade_solver(solver)
    assert up.type == name and not up.HasField("solver_type")
    assert solver.HasField("solver_type")  # the argument is left alone


def test_solver_type_and_type_together_is_an_error():
    solver = caffe_pb2.SolverParameter(solver_type=caffe_pb2.SolverParameter.ADAM, type="Adam")
    with pytest.raises(UpgradeError, match="s.prototxt: .*cannot be both specified"):
        upgrade.upgrade_solver(solver, "s.prototxt")


def test_solver_inline_nets_are_upgraded():
    solver = text.parse_solver_text("""
      base_lr: 0.1
      net_param { layers { name: "r" type: RELU } }
      test_net_param { input: "x" input_dim: 1 input_dim: 1 input_dim: 1 input_dim: 1 }""")
    assert solver.net_param.layer[0].type == "ReLU" and not solver.net_param.layers
    assert solver.test_net_param[0].layer[0].type == "Input"


# -- the seeds ----------------------------------------------------------------------

SEED_FILES = sorted(glob.glob(os.path.join(SEEDS, "**", "*.prototxt"), recursive=True))
# Top-level fields that only a SolverParameter has.
_SOLVER_KEY = re.compile(r"^(net|net_param|train_net|test_net|base_lr|lr_policy|max_iter|"
                         r"solver_mode|solver_type|snapshot_prefix)\s*[:{]", re.M)
# Seed files Caffe itself cannot parse: a string without its closing quote.
UNTERMINATED = {"sq/ImageNet/AlexNet-BN/SQ-BWN/solver_s4.prototxt",
                "sq/ImageNet/AlexNet-BN/SQ-TWN/solver_s4.prototxt"}


def _is_solver(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return _SOLVER_KEY.search(f.read()) is not None


@pytest.mark.skipif(not SEED_FILES, reason="../shared/seeds not present")
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: os.path.relpath(p, SEEDS))
def test_seed_file_parses_and_upgrades(path, caplog):
    rel = os.path.relpath(path, SEEDS)
    with caplog.at_level(logging.WARNING, "pycaffe_lowbit"):
        if _is_solver(path):
            solver = text.read_solver_param(path)
            nets = [solver.net_param, solver.train_net_param] + list(solver.test_net_param)
            assert solver.HasField("net") or solver.HasField("net_param") or \
                solver.HasField("train_net")
        else:
            nets = [text.read_net_param(path)]
            assert len(nets[0].layer) > 0
    for net in nets:
        assert not (net.layers or net.input or net.input_shape or net.input_dim)
        for layer in net.layer:  # Caffe's BatchNorm upgrade keeps the 3 specs, zeroed
            if layer.type == "BatchNorm" and len(layer.param) == 3:
                assert all(p.lr_mult == 0 and p.decay_mult == 0 for p in layer.param)
    if rel in UNTERMINATED:
        assert "%s:15:18: string has no closing quote" % path in caplog.text
        with pytest.raises(text.PrototxtError) as info:
            text.read_solver_param(path, strict=True)
        assert (info.value.line, info.value.column) == (15, 18)
