"""io.text: prototxt reading (errors name file, line, column), Caffe-style writing."""
import logging
import os

import pytest

from pycaffe_lowbit.formats import text
from pycaffe_lowbit.formats.text import PrototxtError
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

GOLDEN_IO = os.path.join(paths.GOLDEN, "io")

NET = """name: "tiny"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape { dim: 2 dim: 3 } }
}
layer {
  name: "ip"
  type: "InnerProduct"
  bottom: "data"
  top: "ip"
  inner_product_param { num_output: 4 }
}
"""


def test_parse_net_text():
    net = text.parse_net_text(NET)
    assert net.name == "tiny"
    assert [l.name for l in net.layer] == ["data", "ip"]
    assert net.layer[1].inner_product_param.num_output == 4


def test_read_net_param_and_write_round_trip(tmp_path):
    src = tmp_path / "net.prototxt"
    src.write_text(NET)
    net = text.read_net_param(src)
    out = tmp_path / "out.prototxt"
    text.write_text(net, out)
    assert text.read_net_param(out) == net
    assert oct(os.stat(out).st_mode & 0o777) != oct(0o600)  # not mkstemp's mode


def _error(src, filename="bad.prototxt", **kw):
    with pytest.raises(PrototxtError) as info:
        text.parse_net_text(src, filename, **kw)
    return info.value


def test_unknown_field_names_file_line_column_and_shows_the_line():
    err = _error('layer {\n  name: "x"\n  foo: 3\n}\n')
    msg = str(err)
    assert (err.filename, err.line, err.column) == ("bad.prototxt", 3, 3)
    assert msg.startswith("bad.prototxt:3:3: error parsing caffe.NetParameter: ")
    assert 'has no field named "foo"' in msg
    assert msg.endswith("\n      foo: 3\n      ^")
    assert isinstance(err, ValueError)


def test_wrong_value_says_what_was_expected():
    err = _error('layer {\n  name: "x"\n  type: ReLU\n}\n')
    assert (err.line, err.column) == (3, 9)
    assert "Expected string but found: 'ReLU'" in str(err)
    assert str(err).endswith("  type: ReLU\n            ^")


def test_missing_brace_at_end_of_text():
    err = _error('layer {\n  name: "x"\n')
    assert err.line == 2
    assert 'Expected "}". (the text ends here)' in str(err)


def test_value_out_of_range():
    err = _error("layer { convolution_param { num_output: -3 } }")
    assert "Value out of range" in str(err) and err.line == 1


def test_error_from_a_file_names_the_path(tmp_path):
    path = tmp_path / "broken.prototxt"
    path.write_text('name: "n"\nlayer {\n  nmae: "x"\n}\n')
    with pytest.raises(PrototxtError) as info:
        text.read_net_param(path)
    assert str(info.value).startswith("%s:3:3: " % path)


def test_string_without_filename():
    assert str(_error("bogus: 1", filename=None)).startswith("<string>:1:1: ")


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.prototxt"
    with pytest.raises(FileNotFoundError) as info:
        text.read_net_param(path)
    assert str(path) in str(info.value) and "not found" in str(info.value)
    with pytest.raises(FileNotFoundError):
        text.read_solver_param(path)


def test_unterminated_string_is_closed_with_a_warning(caplog):
    src = 'base_lr: 0.1\r\nsnapshot_prefix: "model/x_s4\r\nsolver_mode: GPU\r\n'
    with caplog.at_level(logging.WARNING, "pycaffe_lowbit"):
        solver = text.parse_solver_text(src, "solver.prototxt")
    assert solver.snapshot_prefix == "model/x_s4"
    assert solver.solver_mode == caffe_pb2.SolverParameter.GPU
    assert "solver.prototxt:2:18: string has no closing quote" in caplog.text
    with pytest.raises(PrototxtError) as info:
        text.parse_solver_text(src, "solver.prototxt", strict=True)
    assert (info.value.line, info.value.column) == (2, 18)
    assert "String missing ending quote" in str(info.value)


def test_read_solver_param_upgrades_type_and_snapshot_prefix(tmp_path):
    path = tmp_path / "lenet_solver.prototxt"
    path.write_text('net: "lenet.prototxt"\nbase_lr: 0.01\nsolver_type: NESTEROV\n')
    solver = text.read_solver_param(path)
    assert solver.type == "Nesterov" and not solver.HasField("solver_type")
    assert solver.snapshot_prefix == str(tmp_path / "lenet_solver")
    (tmp_path / "snaps").mkdir()
    path.write_text('base_lr: 0.01\nsnapshot_prefix: "%s"\n' % (tmp_path / "snaps"))
    assert text.read_solver_param(path).snapshot_prefix == str(
        tmp_path / "snaps" / "lenet_solver")


def test_format_matches_caffe_text_exactly():
    for name in ("v1_net", "v0_net"):
        path = os.path.join(GOLDEN_IO, name + ".upgraded.prototxt")
        with open(path) as f:
            golden = f.read()
        net = text.read_net_param(path)
        assert text.format_text(net) == golden


@pytest.mark.parametrize("value, expected", [
    (1.0, "1"), (0.1, "0.1"), (1e-05, "1e-05"), (100000.0, "100000"),
    (1e6, "1e+06"), (-2.5, "-2.5"), (1 / 3, "0.333333343"), (0.0, "0"),
    (float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan"),
])
def test_float_formatting_as_protobuf_simple_ftoa(value, expected):
    spec = caffe_pb2.ParamSpec(lr_mult=value)
    assert text.format_text(spec) == "lr_mult: %s\n" % expected


def test_format_scalars_strings_enums_and_doubles():
    solver = caffe_pb2.SolverParameter(
        net='a "b"\n\\c', test_iter=[1, 2], solver_mode=caffe_pb2.SolverParameter.CPU,
        random_seed=-7, test_initialization=False)
    solver.train_state.stage.append("é")
    out = text.format_text(solver)
    assert out == ("test_iter: 1\ntest_iter: 2\n"     # fields in number order
                   "solver_mode: CPU\n"
                   "random_seed: -7\n"
                   'net: "a \\"b\\"\\n\\\\c"\n'
                   'train_state {\n  stage: "\\303\\251"\n}\n'
                   "test_initialization: false\n")
    assert text.parse_solver_text(out) == solver
    blob = caffe_pb2.BlobProto(double_data=[0.1, 1 / 3])
    assert text.format_text(blob) == "double_data: 0.1\ndouble_data: 0.33333333333333331\n"


def test_write_text_is_atomic_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "net.prototxt"
    path.write_text("old")

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(RuntimeError):
        text.write_text(caffe_pb2.NetParameter(name="new"), path)
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["net.prototxt"]
