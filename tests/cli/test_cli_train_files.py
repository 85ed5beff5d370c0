"""``lowbit-caffe train`` with files that are not there: one error line per
missing file, naming the solver file and the field (or the flag), before any
net is built; exit code 1; no traceback."""
import os
import subprocess
import sys

import pytest
from support import paths

ROOT = paths.ROOT

NET = """
name: "tiny"
layer { name: "data" type: "DummyData" top: "x" top: "label"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 }
                           data_filler { type: "gaussian" std: 1 }
                           data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""

BASE = """
base_lr: 0.1
lr_policy: "fixed"
max_iter: 2
snapshot_prefix: "snap/tiny"
"""


def train(cwd, solver_text, *flags):
    (cwd / "net.prototxt").write_text(NET)
    (cwd / "solver.prototxt").write_text(BASE + solver_text)
    out = subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "train",
                          "-solver", "solver.prototxt", *flags],
                         capture_output=True, text=True, cwd=str(cwd),
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert "Traceback" not in out.stderr, out.stderr
    return out


def errors(out):
    """The messages of the glog error lines."""
    return [line.split("] ", 1)[1] for line in out.stderr.splitlines() if line.startswith("E")]


@pytest.mark.parametrize("field,solver_text", [
    ("net", 'net: "x.prototxt"'),
    ("train_net", 'train_net: "x.prototxt"'),
    ("test_net", 'net: "net.prototxt" test_net: "x.prototxt" test_iter: 1 test_interval: 1'),
    ("weights", 'net: "net.prototxt" weights: "x.prototxt"'),
])
def test_missing_file_names_the_field(tmp_path, field, solver_text):
    (tmp_path / "snap").mkdir()
    out = train(tmp_path, solver_text)
    assert out.returncode == 1
    assert errors(out) == ['solver.prototxt: field "%s": no such file "x.prototxt"' % field]
    assert "Creating" not in out.stderr        # said before any net is built


def test_several_problems_one_line_each(tmp_path):
    out = train(tmp_path, 'net: "a.prototxt" weights: "w1.caffemodel, w2.caffemodel"')
    assert out.returncode == 1
    assert errors(out) == [
        'solver.prototxt: field "net": no such file "a.prototxt"',
        'solver.prototxt: field "weights": no such file "w1.caffemodel"',
        'solver.prototxt: field "weights": no such file "w2.caffemodel"',
        'solver.prototxt: field "snapshot_prefix": no such folder "snap" '
        '(snapshots go to snap/tiny_iter_<N>.caffemodel)']


def test_missing_flag_files(tmp_path):
    (tmp_path / "snap").mkdir()
    out = train(tmp_path, 'net: "net.prototxt"', "-weights", "net.prototxt,nope.caffemodel")
    assert out.returncode == 1 and errors(out) == ['--weights: no such file "nope.caffemodel"']
    out = train(tmp_path, 'net: "net.prototxt"', "--snapshot=snap/tiny_iter_5.solverstate")
    assert out.returncode == 1
    assert errors(out) == ['--snapshot: no such file "snap/tiny_iter_5.solverstate"']
    out = train(tmp_path, 'net: "net.prototxt"', "-weights", "snap")
    assert errors(out) == ['--weights: is a folder, not a file: "snap"']


def test_snapshot_folder_is_checked_at_start_up(tmp_path):
    # Caffe would train, then fail at the snapshot after training.
    out = train(tmp_path, 'net: "net.prototxt"')
    assert out.returncode == 1
    assert errors(out) == ['solver.prototxt: field "snapshot_prefix": no such folder "snap" '
                           '(snapshots go to snap/tiny_iter_<N>.caffemodel)']
    assert "Iteration" not in out.stderr
    # No snapshot will be written: nothing to check, training runs.
    out = train(tmp_path, 'net: "net.prototxt" snapshot_after_train: false')
    assert out.returncode == 0, out.stderr[-2000:]
    # --set is applied before the check: a prefix pointing elsewhere works.
    (tmp_path / "elsewhere").mkdir()
    out = train(tmp_path, 'net: "net.prototxt"', "--set", "snapshot_prefix=elsewhere/t")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "elsewhere" / "t_iter_2.caffemodel").exists()


def test_set_can_name_the_missing_net(tmp_path):
    (tmp_path / "snap").mkdir()
    out = train(tmp_path, 'net: "x.prototxt"', "--set", "net=net.prototxt",
                "--set", "layer[ip].inner_product_param.num_output=3")
    assert out.returncode == 0, out.stderr[-2000:]
    out = train(tmp_path, 'net: "net.prototxt"', "--set", "net=y.prototxt")
    assert out.returncode == 1
    assert errors(out) == ['solver.prototxt: field "net": no such file "y.prototxt"']
