"""The digits models train to the accuracy the README states (loosely), and the
README's main command runs end to end, building the dataset on first use."""
import os
import re
import shutil

import pytest

from pycaffe_lowbit.data import datum_to_array
from support.tool_cases import ROOT, datums, run_cli

MAIN_COMMAND = "lowbit-caffe train --solver models/digits_bwn/solver.prototxt"
# Loose floors under the README's measured accuracies (seeded runs vary
# with the BLAS and thread count).
FLOORS = {"digits_fp": 0.93, "digits_bwn": 0.88, "digits_bnn": 0.80}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory like the repository root: models/ only, no data/."""
    work = tmp_path_factory.mktemp("digits")
    for name in FLOORS:
        shutil.copytree(os.path.join(ROOT, "models", name), work / "models" / name)
    return work


def final_accuracy(log):
    values = re.findall(r"Test net output #\d+: accuracy = ([0-9.]+)", log)
    assert values, log[-3000:]
    return float(values[-1])


def test_readme_states_the_main_command():
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert MAIN_COMMAND in readme


def deploy_accuracy(folder, weights, test_lmdb):
    """Accuracy of deploy.prototxt with ``weights`` on every test image."""
    import numpy as np
    import pycaffe_lowbit as caffe
    records = [d for _, d in datums(test_lmdb)]
    x = np.stack([datum_to_array(d) for d in records]).astype(np.float32) * 0.00390625
    labels = np.array([d.label for d in records])
    net = caffe.Net(str(folder / "deploy.prototxt"), str(weights), caffe.TEST)
    prob = net.forward(data=x)["prob"]
    return float(np.mean(prob.argmax(axis=1) == labels))


@pytest.mark.slow
def test_readme_main_command_end_to_end(workdir):
    out = run_cli(workdir, *MAIN_COMMAND.split()[1:])
    assert out.returncode == 0, out.stderr[-3000:]
    assert "building the embedded digits dataset" in out.stderr
    assert "Optimization Done." in out.stderr
    accuracy = final_accuracy(out.stderr)
    assert accuracy >= FLOORS["digits_bwn"]
    folder = workdir / "models" / "digits_bwn"
    weights = folder / "digits_bwn_iter_300.caffemodel"
    test_lmdb = workdir / "data" / "digits" / "digits_test_lmdb"
    assert abs(deploy_accuracy(folder, weights, test_lmdb) - accuracy) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_fp", "digits_bnn"])
def test_other_models_reach_their_accuracy(workdir, name):
    out = run_cli(workdir, "train", "--solver", "models/%s/solver.prototxt" % name)
    assert out.returncode == 0, out.stderr[-3000:]
    accuracy = final_accuracy(out.stderr)
    assert accuracy >= FLOORS[name]
    folder = workdir / "models" / name
    test_lmdb = workdir / "data" / "digits" / "digits_test_lmdb"
    weights = folder / ("%s_iter_300.caffemodel" % name)
    deployed = deploy_accuracy(folder, weights, test_lmdb)
    if name == "digits_fp":
        assert abs(deployed - accuracy) < 1e-6
    else:
        # As Caffe, the solver snapshots, then runs one more TRAIN forward to
        # display the loss (which moves BatchNorm's running statistics), then
        # the final test: the snapshot's statistics are one update older.
        assert deployed >= FLOORS[name] and abs(deployed - accuracy) < 0.02


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_deploy_matches_the_trained_layers(name):
    """deploy.prototxt has the train/test net's learnable layers, same shapes."""
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.formats.text import read_net_param
    folder = os.path.join(ROOT, "models", name)
    deploy = caffe.Net(os.path.join(folder, "deploy.prototxt"), caffe.TEST)
    train = read_net_param(os.path.join(folder, "train_test.prototxt"))
    learnable = [layer.name for layer in train.layer
                 if layer.type not in ("Data", "Accuracy", "SoftmaxWithLoss", "ReLU",
                                       "Pooling", "Quant")]
    assert [n for n in deploy.params] == learnable
    assert deploy.blobs["prob"].data.shape == (1, 10)
