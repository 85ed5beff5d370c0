"""The schema: generated code is current, and it reads upstream and fork files."""
import os
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, text_format

from pycaffe_lowbit.proto import caffe_pb2
from support import paths

ROOT = paths.ROOT
SHARED_PROTO = os.path.join(ROOT, "..", "shared", "proto")


def _compiled_descriptor(tmp_path):
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (pip install -e .[dev])")
    out = tmp_path / "caffe.desc"
    proto_dir = os.path.join(ROOT, "proto")
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
                           "--descriptor_set_out", str(out),
                           os.path.join(proto_dir, "caffe.proto")])
    files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    return files[0]


def _canonical(fdp):
    """Drop what differs between protoc versions without changing the schema:
    json_name (descriptor sets carry it, Python gencode does not) and the
    spelling of float defaults ("1e-08" vs "9.99999994e-09")."""
    def walk(message):
        for f in message.field:
            f.ClearField("json_name")
            if f.type == f.TYPE_FLOAT and f.HasField("default_value"):
                f.default_value = repr(float(np.float32(f.default_value)))
        for nested in message.nested_type:
            walk(nested)
    for m in fdp.message_type:
        walk(m)
    return fdp


def test_generated_module_is_current(tmp_path):
    compiled = _canonical(_compiled_descriptor(tmp_path))
    ours = _canonical(
        descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb))
    assert compiled == ours, (
        "pycaffe_lowbit/proto/caffe_pb2.py is stale: run `python tools/gen_proto.py`")


def _fields(message):
    def default(f):
        if not f.HasField("default_value"):
            return None
        if f.type in (f.TYPE_FLOAT, f.TYPE_DOUBLE):
            return float(np.float32(f.default_value))
        return f.default_value
    return {f.name: (f.number, f.type, f.label, default(f)) for f in message.field}


def _messages(fdp):
    return {m.name: m for m in fdp.message_type}


@pytest.mark.skipif(not os.path.isdir(SHARED_PROTO), reason="../shared/proto not present")
@pytest.mark.parametrize("source", ["bvlc_caffe.proto", "sq_caffe.proto", "hwgq_caffe.proto"])
def test_every_field_of_upstream_and_forks_is_ours(tmp_path, source):
    """Every message and field of the three schemas exists here with the same
    number, type, label and default, except the documented 147/148 move."""
    pytest.importorskip("grpc_tools")
    out = tmp_path / "theirs.desc"
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I", SHARED_PROTO,
                           "--descriptor_set_out", str(out),
                           os.path.join(SHARED_PROTO, source)])
    theirs = _messages(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0])
    ours = _messages(descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb))
    moved = {("LayerParameter", "swish_param"): 5147, ("LayerParameter", "clip_param"): 5148}
    for name, message in theirs.items():
        assert name in ours, "message %s missing" % name
        mine = _fields(ours[name])
        for field, spec in _fields(message).items():
            assert field in mine, "%s.%s missing" % (name, field)
            if (name, field) in moved:
                assert mine[field][0] == moved[(name, field)]
                continue
            assert mine[field] == spec, "%s.%s: ours %s, %s %s" % (name, field, mine[field], source, spec)


def test_fork_fields_parse_from_text():
    net = text_format.Parse("""
      layer { name: "c" type: "BinaryConvolution"
              convolution_param { num_output: 8 sq: true ratio: 50 }
              binary_convolution_param { use_alpha: true } }
      layer { name: "q" type: "Quant" quant_param { forward_func: "hwgq" centers: 0.538 } }
      layer { name: "s" type: "Swish" swish_param { beta: 1.5 } }
      layer { name: "k" type: "Clip" clip_param { min: -1 max: 1 } }
    """, caffe_pb2.NetParameter())
    assert net.layer[0].convolution_param.ratio == 50
    assert net.layer[0].binary_convolution_param.use_alpha
    assert net.layer[0].binary_convolution_param.use_binarization  # default true
    assert net.layer[1].quant_param.backward_func == "relu"        # default
    assert net.layer[2].swish_param.beta == 1.5


def test_hwgq_binary_field_numbers():
    """HWGQ's released .caffemodel files put binary_*_param at 147/148."""
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    assert fields["binary_convolution_param"].number == 147
    assert fields["binary_inner_product_param"].number == 148
    assert fields["quant_param"].number == 149
