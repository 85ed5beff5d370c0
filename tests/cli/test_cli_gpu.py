"""--gpu and device_query as Caffe has them, proven on a machine without a GPU:
the real path (a warning naming why, then the CPU) and, with the backend's
device functions replaced by a fake device, Caffe's precedence and lines."""
import logging

import pytest

from pycaffe_lowbit import cli
from pycaffe_lowbit.cli import common, device
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.proto import caffe_pb2

PROPERTIES = {"name": b"Fake GPU", "major": 9, "minor": 0, "totalGlobalMem": 150 << 30,
              "sharedMemPerBlock": 49152, "regsPerBlock": 65536, "warpSize": 32,
              "memPitch": 2147483647, "maxThreadsPerBlock": 1024,
              "maxThreadsDim": (1024, 1024, 64), "maxGridSize": (2147483647, 65535, 65535),
              "clockRate": 1980000, "totalConstMem": 65536, "textureAlignment": 512,
              "deviceOverlap": 1, "multiProcessorCount": 132, "kernelExecTimeoutEnabled": 0}


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two fake devices; records the backend calls."""
    calls = []
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: None)
    monkeypatch.setattr(backend, "device_count", lambda: 2)
    monkeypatch.setattr(backend, "device_properties", lambda i: PROPERTIES)
    monkeypatch.setattr(backend, "set_device", lambda i: calls.append(("device", i)))
    monkeypatch.setattr(backend, "set_mode_gpu", lambda: calls.append(("mode", "gpu")))
    return calls


def lines(caplog):
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("flag, mode, device_id, expected", [
    ("1", caffe_pb2.SolverParameter.GPU, 0, "1"),      # the flag wins
    ("", caffe_pb2.SolverParameter.GPU, None, "0"),    # solver_mode: GPU, default device 0
    ("", caffe_pb2.SolverParameter.GPU, 1, "1"),       # ... its device_id
    ("", caffe_pb2.SolverParameter.CPU, 1, ""),        # solver_mode: CPU
    ("", None, None, ""),
])
def test_gpu_precedence_is_caffes(flag, mode, device_id, expected):
    param = caffe_pb2.SolverParameter()
    if mode is not None:
        param.solver_mode = mode
    if device_id is not None:
        param.device_id = device_id
    assert common.gpu_from_solver(flag, param) == expected


def test_gpu_ids():
    assert common.gpu_ids("") == [] and common.gpu_ids("0,1") == [0, 1]
    with pytest.raises(ValueError, match="expected device ids"):
        common.gpu_ids("first")


def test_no_usable_gpu_is_one_warning_line_then_the_cpu(caplog, monkeypatch):
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "CuPy finds no CUDA device")
    caplog.set_level(logging.INFO, "pycaffe_lowbit")
    assert common.use_device("0", logging.getLogger("pycaffe_lowbit")) == []
    assert lines(caplog) == ["--gpu 0 asks for a GPU, but CuPy finds no CUDA device: running "
                             "on the CPU", "Use CPU."]
    assert caplog.records[0].levelname == "WARNING" and backend.mode() == "cpu"


def test_this_machines_reason_is_named(caplog):
    if backend.gpu_available():
        pytest.skip("this machine has a GPU")
    caplog.set_level(logging.INFO, "pycaffe_lowbit")
    common.use_device("0", logging.getLogger("pycaffe_lowbit"))
    assert "CuPy" in lines(caplog)[0] and lines(caplog)[1] == "Use CPU."


def test_test_and_time_lines(fake_gpus, caplog):
    caplog.set_level(logging.INFO, "pycaffe_lowbit")
    assert common.use_device("1", logging.getLogger("pycaffe_lowbit")) == [1]
    assert lines(caplog) == ["Use GPU with device ID 1"]
    assert fake_gpus == [("device", 1), ("mode", "gpu")]


def test_train_lines_name_the_gpus(fake_gpus, caplog):
    caplog.set_level(logging.INFO, "pycaffe_lowbit")
    assert common.use_device("all", logging.getLogger("pycaffe_lowbit"), training=True) == [0, 1]
    assert lines(caplog) == ["Using GPUs 0, 1", "GPU 0: Fake GPU", "GPU 1: Fake GPU"]


def test_a_missing_device_is_named(fake_gpus):
    with pytest.raises(ValueError, match=r"--gpu 3: no device 3 \(this machine has 2: 0..1\)"):
        common.use_device("3", logging.getLogger("pycaffe_lowbit"))


def glog_messages(capfd):
    """The messages of the glog lines a CLI run wrote to stderr."""
    return [line.split("] ", 1)[1] for line in capfd.readouterr().err.splitlines() if "] " in line]


def test_device_query_report_is_caffes(fake_gpus, capfd):
    assert cli.main(["device_query", "--gpu", "0"]) == 0
    got = glog_messages(capfd)
    assert got[0] == "Querying GPUs 0"
    assert got[1:5] == ["Device id:                     0", "Major revision number:         9",
                        "Minor revision number:         0", "Name:                          Fake GPU"]
    assert "Maximum dimension of block:    1024, 1024, 64" in got
    assert "Concurrent copy and execution: Yes" in got and got[-1].endswith("No")
    assert len(device.report(0, PROPERTIES)) == 18


def test_device_query_needs_an_id_and_a_gpu(capfd, monkeypatch):
    assert cli.main(["device_query"]) == 1
    assert glog_messages(capfd) == ["Need a device ID to query."]
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "CuPy is not installed")
    assert cli.main(["device_query", "-gpu", "0"]) == 1
    assert glog_messages(capfd) == ["device_query: CuPy is not installed"]


def test_a_solver_asking_for_a_gpu_trains_on_the_cpu_with_a_warning(tmp_path, capfd,
                                                                       monkeypatch):
    from support.helpers import TINY_NET
    monkeypatch.setattr(backend, "gpu_unavailable_reason", lambda: "CuPy finds no CUDA device")
    (tmp_path / "net.prototxt").write_text(TINY_NET)
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt" base_lr: 0.01 lr_policy: "fixed" max_iter: 2 display: 1 '
        'snapshot_after_train: false solver_mode: GPU device_id: 1')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--solver", "solver.prototxt"]) == 0
    got = glog_messages(capfd)
    start = got.index("--gpu 1 asks for a GPU, but CuPy finds no CUDA device: running on the CPU")
    assert got[start:start + 2] == ["--gpu 1 asks for a GPU, but CuPy finds no CUDA device: running on the "
                       "CPU", "Use CPU."]
    assert "Optimization Done." in got
