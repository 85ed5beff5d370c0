"""overrides: `--set FIELD=VALUE` on solver and net parameters."""

import pytest
from google.protobuf import text_format

from pycaffe_lowbit.cli.overrides import (OverrideError, apply_net_overrides, apply_overrides,
                                          apply_solver_overrides, is_net_override, parse_override)
from pycaffe_lowbit.proto import caffe_pb2

NET = """
name: "toy"
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        data_param { source: "PLACEHOLDER_train" batch_size: 64 backend: LMDB } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TEST }
        data_param { source: "PLACEHOLDER_test" batch_size: 100 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 8 kernel_size: 3 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 } }
layer { name: "1" type: "ReLU" bottom: "pool1" top: "pool1" }
"""


def net():
    return text_format.Parse(NET, caffe_pb2.NetParameter())


def solver(**fields):
    s = caffe_pb2.SolverParameter(base_lr=0.01, lr_policy="step", max_iter=100)
    s.test_iter.append(10)
    for k, v in fields.items():
        setattr(s, k, v)
    return s


def test_parse():
    ov = parse_override("layer[conv1].param[1].lr_mult = 0")
    assert ov.steps == [("layer", "conv1"), ("param", 1), ("lr_mult", None)] and ov.value == "0"
    ov = parse_override("layer[\"a.b\"].data_param.source=/x=y/z.lmdb")
    assert ov.steps[0] == ("layer", "a.b") and ov.value == "/x=y/z.lmdb"
    assert parse_override("layer['7'].name=x").steps[0] == ("layer", "7")
    assert parse_override("stepvalue=[1,2]").value == "[1,2]"
    assert is_net_override("layer[x].name=y") and not is_net_override("base_lr=1")


def test_solver_scalars_enums_and_lists():
    s = apply_solver_overrides(solver(), [
        "base_lr=0.5", "max_iter=2000", "lr_policy=multistep", "stepvalue=[100, 200,300]",
        "solver_mode=GPU", "debug_info=true", "test_iter[0]=7", "snapshot_prefix=snap/x_y",
        "type=Adam", "momentum2=0.999", "regularization_type=L1", "clip_gradients=1e1",
        "test_initialization=false", "snapshot_format=HDF5"])
    assert s.base_lr == 0.5 and s.max_iter == 2000 and s.lr_policy == "multistep"
    assert list(s.stepvalue) == [100, 200, 300]
    assert s.solver_mode == caffe_pb2.SolverParameter.GPU and s.debug_info
    assert list(s.test_iter) == [7] and s.snapshot_prefix == "snap/x_y"
    assert s.type == "Adam" and s.regularization_type == "L1" and s.clip_gradients == 10.0
    assert s.test_initialization is False
    assert s.snapshot_format == caffe_pb2.SolverParameter.HDF5
    apply_solver_overrides(s, ["stepvalue=[]", "test_iter=5", "test_iter[1]=6",
                               "snapshot_prefix='quoted'"])
    assert list(s.stepvalue) == [] and list(s.test_iter) == [5, 6]
    assert s.snapshot_prefix == "quoted"


def test_net_layers_by_name_and_index():
    n = apply_net_overrides(net(), [
        "layer[data].data_param.source=/data/cifar_lmdb",
        "layer[conv1].param[1].lr_mult=0",
        "layer[conv1].convolution_param.num_output=16",
        "layer[conv1].convolution_param.kernel_size=[5]",
        "layer[conv1].convolution_param.weight_filler={type: 'gaussian' std: 0.01}",
        "layer[pool1].pooling_param.pool=AVE",
        "layer[2].name=conv_first",
        "layer[-1].type=PReLU",
        "layer['1'].top=[a]",
        "name=renamed"])
    assert [l.data_param.source for l in n.layer[:2]] == ["/data/cifar_lmdb"] * 2
    conv = n.layer[2]
    assert conv.name == "conv_first" and conv.param[1].lr_mult == 0
    assert conv.convolution_param.num_output == 16 and list(conv.convolution_param.kernel_size) == [5]
    assert conv.convolution_param.weight_filler.type == "gaussian"
    assert conv.convolution_param.weight_filler.std == pytest.approx(0.01)
    assert n.layer[3].pooling_param.pool == caffe_pb2.PoolingParameter.AVE
    assert n.layer[4].type == "PReLU" and list(n.layer[4].top) == ["a"]
    assert n.name == "renamed"
    # Other fields kept.
    assert n.layer[0].data_param.batch_size == 64 and n.layer[1].data_param.batch_size == 100
    # A new element appended one past the end of a repeated message field.
    apply_net_overrides(n, ["layer[conv_first].param[2].lr_mult=3"])
    assert len(n.layer[2].param) == 3 and n.layer[2].param[2].lr_mult == 3


def test_solver_inline_nets():
    s = solver()
    s.net_param.CopyFrom(net())
    s.test_net_param.add().CopyFrom(net())
    apply_solver_overrides(s, ["layer[data].data_param.source=/d", "base_lr=1"])
    assert s.net_param.layer[0].data_param.source == "/d"
    assert s.test_net_param[0].layer[1].data_param.source == "/d"
    apply_solver_overrides(s, ["net_param.layer[conv1].convolution_param.num_output=4"])
    assert s.net_param.layer[2].convolution_param.num_output == 4
    assert s.test_net_param[0].layer[2].convolution_param.num_output == 8


def test_solver_net_file_is_read_and_inlined(tmp_path):
    path = tmp_path / "net.prototxt"
    path.write_text(NET)
    s = solver(net=str(path))
    apply_solver_overrides(s, ["max_iter=5"])
    assert s.net == str(path) and not s.HasField("net_param")   # untouched without layer[...]
    apply_solver_overrides(s, ["layer[data].data_param.source=/seed/data"])
    assert s.net == "" and s.net_param.layer[0].data_param.source == "/seed/data"
    assert s.net_param.name == "toy"
    seen = []

    def read(p):
        seen.append(p)
        return net()
    s = solver(train_net="t.prototxt")
    s.test_net.append("v.prototxt")
    apply_solver_overrides(s, ["layer[conv1].convolution_param.num_output=2"], read_net=read)
    assert seen == ["t.prototxt", "v.prototxt"]
    assert s.train_net == "" and len(s.test_net) == 0
    assert s.train_net_param.layer[2].convolution_param.num_output == 2
    assert s.test_net_param[0].layer[2].convolution_param.num_output == 2


def test_apply_overrides_dispatch():
    assert apply_overrides(solver(), ["base_lr=2"]).base_lr == 2
    assert apply_overrides(net(), ["layer[conv1].type=Deconvolution"]).layer[2].type \
        == "Deconvolution"
    f = apply_overrides(caffe_pb2.FillerParameter(), ["type=uniform", "max=3"])
    assert f.type == "uniform" and f.max == 3


@pytest.mark.parametrize("text,message", [
    ("base_lrr=1", "SolverParameter has no field 'base_lrr'; did you mean base_lr"),
    ("layr[data].name=x", "did you mean layer"),
    ("max_iter=1.5", "'1.5' is not an integer, as max_iter expects"),
    ("base_lr=fast", "'fast' is not a number, as base_lr expects"),
    ("debug_info=maybe", "expects: true or false"),
    ("solver_mode=TPU", "expected one of CPU, GPU"),
    ("test_iter[3]=1", "index 3 is out of range for SolverParameter.test_iter, which has 1"),
    ("base_lr[0]=1", "base_lr is not a repeated field"),
    ("base_lr", "there is no '='"),
    ("base_lr.x=1", "is a float, not a message"),
    ("layer[data].name=x", "the solver has no net"),
    ("net_param.layer.name=x", "repeated field: expected layer[INDEX] or layer[NAME]"),
    ("train_state=3", "is a message (NetState): expected a text-format body in braces"),
    ("layer[].name=x", "empty brackets"),
])
def test_solver_errors(text, message):
    with pytest.raises(OverrideError) as info:
        apply_solver_overrides(solver(), [text])
    assert message in str(info.value)
    assert repr(text) in str(info.value)    # the override is quoted


@pytest.mark.parametrize("text,message", [
    ("layer[conv9].name=x", "no layer named 'conv9' (did you mean conv1?); the layers are: "
                            "data, conv1, pool1, 1"),
    ("layer[conv1].convolution_param.num_outputs=3", "did you mean num_output"),
    ("layer[pool1].pooling_param.pool=MEDIAN", "expected one of MAX, AVE, STOCHASTIC"),
    ("layer[conv1].param[5].lr_mult=1", "index 5 is out of range"),
    ("layer[conv1].convolution_param.weight_filler={typ: 1}", "cannot read the FillerParameter"),
    ("layer[conv1].convolution_param.num_output=-1", "not a non-negative integer"),
    ("layer[conv1]=x", "expected a path into it"),
    ("layer[9].name=x", "index 9 is out of range for"),
])
def test_net_errors(text, message):
    with pytest.raises(OverrideError) as info:
        apply_net_overrides(net(), [text])
    assert message in str(info.value)


def test_failed_override_is_a_value_error():
    with pytest.raises(ValueError):
        apply_net_overrides(net(), ["nope=1"])


def test_module_documents_grammar():
    import pycaffe_lowbit.cli.override_syntax as mod
    for word in ("override :=", "layer[NAME]", "FIELD[INDEX]", "[a,b", "true"):
        assert word in mod.__doc__
