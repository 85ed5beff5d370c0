"""pycaffe's exception contract, part 1: Net construction, Python layers in
each method, the Net's methods, solver construction.

Each case names the type BVLC's pycaffe raises at that point (its
python/caffe/*.py, and _caffe.cpp whose std::runtime_error boost.python turns
into RuntimeError); ours must be an instance of it, and keep our clearer
message. A user's Python layer error is the user's own object, unwrapped.
"""
import sys
import traceback

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core.errors import is_user_error, user_error_summary
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers.base import LayerSetupError

MODULE = '''
import pycaffe_lowbit as caffe


class BoomError(Exception):
    """An exception class of the user's own, with its own constructor."""

    def __init__(self, code):
        super().__init__("boom %d" % code)
        self.code = code


class Failing(caffe.Layer):
    """Raises in the method named by param_str (reshape: from its 2nd call)."""

    def setup(self, bottom, top):
        self.reshapes = 0
        if self.param_str == "setup":
            raise RuntimeError("setup failed on purpose")
        if self.param_str == "setup-own":
            raise BoomError(7)

    def reshape(self, bottom, top):
        self.reshapes += 1
        if self.param_str == "reshape" and self.reshapes > 1:
            raise ValueError("reshape failed on purpose")
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        if self.param_str == "forward":
            raise ZeroDivisionError("forward failed on purpose")
        top[0].data[...] = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if self.param_str == "backward":
            raise KeyError("backward failed on purpose")
        bottom[0].diff[...] = top[0].diff
'''

RAISE_LINE = 1 + MODULE.splitlines().index('            raise RuntimeError("setup failed on purpose")')

NET = """
force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "py" type: "Python" bottom: "x" top: "y"
        python_param { module: "lowbit_failing_layer" layer: "Failing" param_str: "%s" } }
"""


@pytest.fixture
def failing(tmp_path, monkeypatch):
    (tmp_path / "lowbit_failing_layer.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("lowbit_failing_layer", None)


def net_for(method, **kwargs):
    return caffe.Net(parse_net_text(NET % method), caffe.TRAIN, **kwargs)


def _user_frames(exc):
    return [f.name for f in traceback.extract_tb(exc.__traceback__)
            if f.filename.endswith("lowbit_failing_layer.py")]


# -- Net construction ----------------------------------------------------------

def test_missing_net_file_is_a_runtime_error(tmp_path):
    path = str(tmp_path / "nope.prototxt")
    with pytest.raises(RuntimeError, match="Could not open net file") as info:
        caffe.Net(path, caffe.TEST)
    assert isinstance(info.value, FileNotFoundError) and info.value.filename == path


def test_missing_weights_file_is_a_runtime_error(tmp_path):
    net_file = tmp_path / "net.prototxt"
    net_file.write_text(NET.split("layer { name: \"py\"")[0])
    missing = str(tmp_path / "nope.caffemodel")
    for call in (lambda: caffe.Net(str(net_file), missing, caffe.TEST),
                 lambda: caffe.Net(str(net_file), caffe.TEST, weights=missing)):
        with pytest.raises(RuntimeError, match="Could not open weights file") as info:
            call()
        assert isinstance(info.value, FileNotFoundError) and info.value.filename == missing
    assert caffe.Net(str(net_file), caffe.TEST, weights="").inputs == ["x"]   # no weights


def test_python_layer_setup_runtime_error_stays_a_runtime_error(failing):
    with pytest.raises(RuntimeError, match="setup failed on purpose") as info:
        net_for("setup")
    exc = info.value
    assert type(exc) is RuntimeError            # the user's own type, not wrapped
    assert "setup" in _user_frames(exc)         # and its traceback
    assert is_user_error(exc)
    assert any("Python layer 'py'" in note for note in exc.__notes__)
    assert user_error_summary(exc).startswith(
        "layer 'py' (Python, lowbit_failing_layer.Failing) raised in setup() at ")
    assert user_error_summary(exc).endswith(
        "lowbit_failing_layer.py:%d: RuntimeError: setup failed on purpose" % RAISE_LINE)


def test_python_layer_own_exception_class_is_kept(failing):
    with pytest.raises(Exception) as info:
        net_for("setup-own")
    exc = info.value
    assert type(exc).__name__ == "BoomError" and exc.code == 7
    assert type(exc) is sys.modules["lowbit_failing_layer"].BoomError


@pytest.mark.parametrize("method, call, expected", [
    ("reshape", lambda net: net.forward(), ValueError),
    ("reshape", lambda net: net.reshape(), ValueError),
    ("forward", lambda net: net.forward(), ZeroDivisionError),
    ("backward", lambda net: (net.forward(), net.backward()), KeyError),
])
def test_python_layer_errors_in_each_method_pass_through(failing, method, call, expected):
    net = net_for(method)
    with pytest.raises(expected, match="%s failed on purpose" % method) as info:
        call(net)
    assert type(info.value) is expected
    assert method in _user_frames(info.value)
    assert is_user_error(info.value)


def test_python_layer_module_and_class_errors_have_import_types(failing):
    bad_module = NET.replace("lowbit_failing_layer", "no_such_module_xyz")
    with pytest.raises(ImportError, match="layer 'py'.*no_such_module_xyz") as info:
        caffe.Net(parse_net_text(bad_module % "x"), caffe.TRAIN)
    assert isinstance(info.value, LayerSetupError)
    bad_class = NET.replace('layer: "Failing"', 'layer: "NoSuchClass"')
    with pytest.raises(AttributeError, match="has no class 'NoSuchClass'") as info:
        caffe.Net(parse_net_text(bad_class % "x"), caffe.TRAIN)
    assert isinstance(info.value, LayerSetupError)


def test_builtin_layer_errors_keep_our_types():
    """Where pycaffe aborts (a CHECK in C++), our error names the layer."""
    bad = """layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 } } }
             layer { name: "c" type: "Convolution" bottom: "x" top: "c" }"""
    with pytest.raises(LayerSetupError, match="layer 'c'"):
        caffe.Net(parse_net_text(bad), caffe.TEST)


def test_cli_prints_one_line_for_a_python_layer_error(failing, capsys):
    from pycaffe_lowbit.cli.main import main
    (failing / "net.prototxt").write_text(NET % "setup")
    code = main(["time", "-model", str(failing / "net.prototxt"), "-iterations", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "Traceback" not in "\n".join(err)
    assert err[-1].endswith("raised in setup() at %s:%d: RuntimeError: setup failed on "
                            "purpose" % (failing / "lowbit_failing_layer.py", RAISE_LINE))


# -- the Net's methods -------------------------------------------------------------

def test_net_method_errors_have_pycaffe_types(failing):
    net = net_for("none")
    with pytest.raises(ValueError, match="no layer named 'nope'"):   # list.index
        net.forward(start="nope")
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        net.backward(end="nope")
    with pytest.raises(Exception, match="do not match net inputs"):
        net.forward(bogus=np.zeros((2, 3)))
    with pytest.raises(KeyError):
        net.blobs["nope"]
    with pytest.raises(KeyError):
        net.layer_dict["nope"]
    with pytest.raises(RuntimeError, match="first layer is a MemoryData layer"):
        net.set_input_arrays(np.zeros((1, 1, 1, 1), np.float32), np.zeros(1, np.float32))


def test_set_input_arrays_errors_are_runtime_errors():
    net = caffe.Net(parse_net_text(
        'layer { name: "m" type: "MemoryData" top: "d" top: "l" '
        'memory_data_param { batch_size: 2 channels: 1 height: 1 width: 3 } }'), caffe.TEST)
    for data, labels, message in [
            (np.zeros((2, 3), np.float32), np.zeros(2), "must be 4-d"),
            (np.zeros((2, 1, 1, 4), np.float32), np.zeros(2), "wrong number of width"),
            (np.zeros((2, 1, 1, 3), np.float32), np.zeros(3), "same first dimension"),
            (np.zeros((3, 1, 1, 3), np.float32), np.zeros(3), "multiple of batch size")]:
        with pytest.raises(RuntimeError, match=message):
            net.set_input_arrays(data, labels)


# -- solver construction -----------------------------------------------------------

SOLVER = """net: "net.prototxt"
base_lr: 0.1
lr_policy: "fixed"
max_iter: 1
"""


@pytest.mark.parametrize("make", [caffe.SGDSolver, caffe.get_solver, caffe.AdamSolver])
def test_solver_construction_lets_python_layer_errors_through(failing, make, monkeypatch):
    (failing / "net.prototxt").write_text(NET % "setup")
    (failing / "solver.prototxt").write_text(SOLVER)
    monkeypatch.chdir(failing)
    with pytest.raises(RuntimeError, match="setup failed on purpose") as info:
        make("solver.prototxt")
    assert type(info.value) is RuntimeError and "setup" in _user_frames(info.value)


def test_solver_step_lets_python_layer_errors_through(failing, monkeypatch):
    (failing / "net.prototxt").write_text(
        NET % "forward" + 'layer { name: "l" type: "EuclideanLoss" bottom: "y" bottom: "x" '
                          'top: "loss" }')
    (failing / "solver.prototxt").write_text(SOLVER)
    monkeypatch.chdir(failing)
    solver = caffe.SGDSolver("solver.prototxt")
    with pytest.raises(ZeroDivisionError, match="forward failed on purpose"):
        solver.step(1)


def test_missing_solver_file_names_it(tmp_path):
    path = str(tmp_path / "nope_solver.prototxt")
    with pytest.raises(FileNotFoundError, match="nope_solver.prototxt"):
        caffe.SGDSolver(path)
