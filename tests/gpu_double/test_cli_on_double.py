"""The command line with ``--gpu 0`` on the CuPy double, run as a user runs it
(a subprocess, ``$LOWBIT_CUPY_MODULE`` set): a whole training of digits_bwn
(the Data layer feeding device blobs, the fused solver, snapshots written from
device arrays) ending at the CPU's accuracy, a resume from its solver state,
``test``, ``time`` (timed with CUDA events), ``device_query``, and the deployed
and packed models run in GPU mode."""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from support import paths

pytestmark = pytest.mark.double
ROOT = paths.ROOT
MODEL = "models/digits_bwn"
# Official-path accuracy of this run on the CPU: 0.975 (359 test images); the
# kernels sum in another order, so the device run may end a few images apart.
CPU_ACCURACY = 0.975
ACCURACY_TOLERANCE = 0.03


def run_cli(cwd, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
               LOWBIT_CUPY_MODULE="support.cupy_double")
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", *args], cwd=str(cwd),
                          capture_output=True, text=True, env=env, timeout=900)


def accuracies(log):
    return [float(v) for v in re.findall(r"accuracy = ([0-9.]+)", log)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("digits_gpu")
    shutil.copytree(os.path.join(ROOT, MODEL), str(work / MODEL))
    out = run_cli(work, "train", "--solver", MODEL + "/solver.prototxt", "--gpu", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    return work, out.stderr


def test_train_with_gpu_ends_at_the_cpus_accuracy(trained):
    work, log = trained
    assert "Using GPUs 0" in log and "GPU 0: CuPy double" in log
    assert "Optimization Done." in log
    assert abs(accuracies(log)[-1] - CPU_ACCURACY) <= ACCURACY_TOLERANCE
    for ext in ("caffemodel", "solverstate"):
        assert (work / MODEL / ("digits_bwn_iter_300." + ext)).exists()


def test_resume_from_the_device_snapshot(trained):
    work, log = trained
    out = run_cli(work, "train", "--solver", MODEL + "/solver.prototxt", "--gpu", "0",
                  "--snapshot", MODEL + "/digits_bwn_iter_300.solverstate")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Resuming from " + MODEL + "/digits_bwn_iter_300.solverstate" in out.stderr
    assert accuracies(out.stderr)[-1] == accuracies(log)[-1]


def test_test_scores_the_snapshot_as_training_did(trained):
    work, log = trained
    out = run_cli(work, "test", "--model", MODEL + "/train_test.prototxt", "--weights",
                  MODEL + "/digits_bwn_iter_300.caffemodel", "--iterations", "1", "--gpu", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Use GPU with device ID 0" in out.stderr
    assert accuracies(out.stderr)[-1] == accuracies(log)[-1]


def test_time_uses_cuda_events(trained):
    work, _ = trained
    out = run_cli(work, "time", "--model", MODEL + "/train_test.prototxt", "--iterations", "1",
                  "--gpu", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Average Forward-Backward" in out.stderr


def test_time_records_events_on_the_gpu(cupy_double, trained, monkeypatch):
    from pycaffe_lowbit.cli import benchmark
    recorded = len(cupy_double.cuda._recorded)
    timer = benchmark.Timer()
    assert timer.seconds() >= 0
    assert len(cupy_double.cuda._recorded) == recorded + 2


def test_device_query_reports_the_device(tmp_path):
    out = run_cli(tmp_path, "device_query", "--gpu", "0")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Name:                          CuPy double" in out.stderr


def _test_images(work):
    from pycaffe_lowbit.data import datum_to_array
    from support.tool_cases import datums
    records = [d for _, d in datums(str(work / "data" / "digits" / "digits_test_lmdb"))]
    x = np.stack([datum_to_array(d) for d in records]).astype(np.float32) * 0.00390625
    return x, np.array([d.label for d in records])


def test_deploy_and_the_packed_runtime_on_the_device(cupy_double, trained):
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.core import backend
    from pycaffe_lowbit.deploy.runtime import PackedNet
    work, log = trained
    out = run_cli(work, "deploy", "--model", MODEL + "/deploy.prototxt", "--weights",
                  MODEL + "/digits_bwn_iter_300.caffemodel", "--out", "deployed",
                  )
    assert out.returncode == 0, out.stderr[-3000:]
    x, labels = _test_images(work)
    net = caffe.Net(str(work / MODEL / "deploy.prototxt"),
                    str(work / MODEL / "digits_bwn_iter_300.caffemodel"), caffe.TEST)
    prob = net.forward(data=x)["prob"]
    assert type(prob) is np.ndarray                       # pycaffe's output: host
    assert type(net.blob_by_name("prob").data) is cupy_double.ndarray
    accuracy = float((prob.argmax(axis=1) == labels).mean())
    assert accuracy == pytest.approx(accuracies(log)[-1], abs=1e-6)
    packed_path = [f for f in os.listdir(str(work / "deployed")) if f.endswith(".lbpack")][0]
    packed = PackedNet(str(work / "deployed" / packed_path))
    outputs = packed.forward(data=x)
    device_prob = outputs[sorted(outputs)[0]]
    assert type(device_prob) is cupy_double.ndarray
    backend.set_mode_cpu()
    host = PackedNet(str(work / "deployed" / packed_path)).forward(data=x)
    np.testing.assert_allclose(device_prob.get(), host[sorted(host)[0]], rtol=1e-5, atol=1e-6)
