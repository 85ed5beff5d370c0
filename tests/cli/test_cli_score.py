"""lowbit-caffe test: Caffe's scoring loop and report, run as a user runs it."""
import subprocess
import sys

import numpy as np

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import parse_net_text
from support import paths

ROOT = paths.ROOT

NET = """
name: "score"
layer { name: "data" type: "DummyData" top: "x" top: "label"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 }
                           data_filler { type: "constant" value: 1 }
                           data_filler { type: "constant" value: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 1 } } }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss"
        loss_weight: 2 }
"""


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_test_command_reports_batches_and_means(tmp_path):
    model = tmp_path / "score.prototxt"
    model.write_text(NET)
    caffe.set_random_seed(7)
    net = caffe.Net(parse_net_text(NET), caffe.TEST)
    weights = str(tmp_path / "score.caffemodel")
    net.save(weights)
    out = net.forward()
    loss, acc = float(out["loss"]), float(out["accuracy"])

    result = run_cli("test", "-model", str(model), "-weights", weights, "-iterations", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stderr
    assert "Running for 3 iterations." in log
    assert "Batch 2, accuracy = %g" % acc in log
    assert "Batch 0, loss = %g" % loss in log
    assert "Loss: %g" % (2 * loss) in log
    assert "loss = %g (* 2 = %g loss)" % (loss, 2 * loss) in log
    assert "] accuracy = %g\n" % acc in log


def test_test_command_needs_weights(tmp_path):
    model = tmp_path / "score.prototxt"
    model.write_text(NET)
    result = run_cli("test", "-model", str(model))
    assert result.returncode != 0
    assert "need model weights" in (result.stderr + result.stdout)
    assert "Traceback" not in result.stderr


def test_score_function_returns_means():
    from pycaffe_lowbit.cli.score import score
    import logging
    net = caffe.Net(parse_net_text(NET), caffe.TEST)
    means = score(net, 2, logging.getLogger("pycaffe_lowbit"))
    assert set(means) == {"accuracy", "loss"}
    assert np.isfinite(means["loss"])
