"""Exit status of `train` and `time` over every data source, in a subprocess.

JPEG-encoded LMDBs used to end every run with "terminate called without an
active exception" (SIGABRT, status 134): the prefetch thread was inside
cv2.imdecode when the interpreter finalized (data/threads.py). Each run here
must exit 0 after success, 1 after a clear error, and leave no thread behind:
the child reports the threads still alive after every other exit hook ran.
"""
import os
import signal
import subprocess
import sys

import cv2
import h5py
import numpy as np
import pytest

from pycaffe_lowbit.data import array_to_datum, open_db
from pycaffe_lowbit.data.datum import encoded_datum
from support import paths

# Registered first, so it runs last: after the data threads were stopped.
CHILD = r"""
import atexit, sys, threading
def report():
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    sys.stderr.write("THREADS LEFT AT EXIT: %r\n" % (left,))
atexit.register(report)
from pycaffe_lowbit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
SIZE, CROP, BATCH, RECORDS = 40, 32, 8, 24
TRANSFORM = ("transform_param { mirror: true crop_size: %d mean_value: 104 mean_value: 117 "
             "mean_value: 123 }" % CROP)


def images():
    rng = np.random.default_rng(0)
    for i in range(RECORDS):
        yield cv2.GaussianBlur(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
                               (5, 5), 2), i % 2


def write_db(path, backend, encoded, broken_at=None):
    if os.path.exists(str(path)):      # the time net and the train net share it
        return str(path)
    with open_db(str(path), backend, "w") as db:
        for i, (image, label) in enumerate(images()):
            if i == broken_at:
                datum = encoded_datum(b"not a jpeg", label)
            elif encoded:
                datum = encoded_datum(cv2.imencode(".jpg", image)[1].tobytes(), label)
            else:
                datum = array_to_datum(image.transpose(2, 0, 1), label)
            db.put("%08d" % i, datum.SerializeToString())
    return str(path)


def data_layer(kind, tmp):
    """The prototxt of a data layer of ``kind`` reading files under ``tmp``."""
    if kind in ("raw", "encoded", "leveldb", "broken"):
        backend = "leveldb" if kind == "leveldb" else "lmdb"
        source = write_db(tmp / kind, backend, kind in ("encoded", "broken"),
                          broken_at=13 if kind == "broken" else None)
        return ('type: "Data" %s data_param { source: "%s" batch_size: %d backend: %s '
                'workers: 2 }' % (TRANSFORM, source, BATCH, backend.upper()))
    if kind in ("image", "window"):
        lines, windows = [], []
        for i, (image, label) in enumerate(images()):
            name = str(tmp / ("%d.png" % i))
            cv2.imwrite(name, image)
            lines.append("%s %d" % (name, label))
            windows.append("# %d\n%s\n3 %d %d\n2\n1 1.0 2 2 30 30\n0 0.1 0 0 20 20"
                           % (i, name, SIZE, SIZE))
        if kind == "image":
            (tmp / "list.txt").write_text("\n".join(lines) + "\n")
            return ('type: "ImageData" %s image_data_param { source: "%s" batch_size: %d '
                    'shuffle: true workers: 2 }' % (TRANSFORM, tmp / "list.txt", BATCH))
        (tmp / "windows.txt").write_text("\n".join(windows) + "\n")
        return ('type: "WindowData" transform_param { mirror: true crop_size: %d } '
                'window_data_param { source: "%s" batch_size: %d fg_threshold: 0.5 '
                'bg_threshold: 0.5 }' % (CROP, tmp / "windows.txt", BATCH))
    if kind == "hdf5":
        with h5py.File(str(tmp / "d.h5"), "w") as f:
            f["data"] = np.random.default_rng(0).random((RECORDS, 3, CROP, CROP), np.float32)
            f["label"] = (np.arange(RECORDS) % 2).astype(np.float32)
        (tmp / "h5list.txt").write_text(str(tmp / "d.h5") + "\n")
        return ('type: "HDF5Data" hdf5_data_param { source: "%s" batch_size: %d }'
                % (tmp / "h5list.txt", BATCH))
    assert kind == "memory"      # never given data from the command line: a clear error
    return ('type: "MemoryData" memory_data_param { batch_size: %d channels: 3 '
            'height: %d width: %d }' % (BATCH, CROP, CROP))


def write_net(tmp, kind, train=False):
    head = 'name: "exit" layer { name: "data" top: "data" top: "label" %s }\n' \
        % data_layer(kind, tmp)
    if train:
        body = ('layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                'inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }\n'
                'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" '
                'top: "loss" }\n')
    else:
        body = 'layer { name: "s" type: "Silence" bottom: "data" bottom: "label" }\n'
    path = tmp / ("net_%s.prototxt" % kind)
    path.write_text(head + body)
    return str(path)


def write_solver(tmp, kind, max_iter=3):
    path = tmp / "solver.prototxt"
    path.write_text('net: "%s"\nbase_lr: 0.01\nlr_policy: "fixed"\nmax_iter: %d\n'
                    'display: 1\nsnapshot_prefix: "%s"\n'
                    % (write_net(tmp, kind, train=True), max_iter, tmp / "snap"))
    return str(path)


def child(*args):
    return [sys.executable, "-c", CHILD, *args]


def run(*args):
    out = subprocess.run(child(*args), capture_output=True, text=True, cwd=paths.ROOT,
                         env=dict(os.environ, PYTHONPATH=paths.ROOT), timeout=300)
    return out.returncode, out.stderr


def assert_clean(code, log, expected):
    assert "terminate called" not in log, log[-2000:]
    assert code == expected, log[-2000:]
    assert "THREADS LEFT AT EXIT: []" in log, log[-2000:]


@pytest.mark.parametrize("command", ["time", "train"])
def test_encoded_lmdb_runs_exit_0_every_time(tmp_path, command):
    args = ("time", "-model", write_net(tmp_path, "encoded"), "-iterations", "3") \
        if command == "time" else ("train", "-solver", write_solver(tmp_path, "encoded"))
    for _ in range(3):
        code, log = run(*args)
        assert_clean(code, log, 0)
        assert ("Benchmark ends" if command == "time" else "Optimization Done") in log


@pytest.mark.parametrize("kind", ["raw", "leveldb", "image", "window", "hdf5"])
def test_every_source_exits_0_after_time_and_train(tmp_path, kind):
    if kind == "leveldb":
        pytest.importorskip("plyvel")
    assert_clean(*run("time", "-model", write_net(tmp_path, kind), "-iterations", "2"), 0)
    assert_clean(*run("train", "-solver", write_solver(tmp_path, kind)), 0)


def test_a_bad_record_is_a_clear_error_with_exit_1(tmp_path):
    code, log = run("train", "-solver", write_solver(tmp_path, "broken"))
    assert_clean(code, log, 1)
    assert "record 13" in log and "could not decode" in log


def test_memory_data_without_arrays_is_a_clear_error_with_exit_1(tmp_path):
    code, log = run("time", "-model", write_net(tmp_path, "memory"), "-iterations", "2")
    assert_clean(code, log, 1)
    assert "set_input_arrays" in log


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_train_stopped_by_a_signal_snapshots_and_exits_0(tmp_path, signum):
    solver = write_solver(tmp_path, "encoded", max_iter=100000)
    proc = subprocess.Popen(child("train", "-solver", solver), cwd=paths.ROOT,
                            env=dict(os.environ, PYTHONPATH=paths.ROOT),
                            stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "Iteration 2," in line:
            proc.send_signal(signum)
            break
    rest = proc.communicate(timeout=120)[1]
    log = "".join(lines) + rest
    assert_clean(proc.returncode, log, 0)
    assert "Snapshotting to binary proto file" in log


def test_time_interrupted_by_sigint_exits_130_without_an_abort(tmp_path):
    proc = subprocess.Popen(child("time", "-model", write_net(tmp_path, "encoded"),
                                  "-iterations", "100000"),
                            cwd=paths.ROOT, env=dict(os.environ, PYTHONPATH=paths.ROOT),
                            stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "Iteration: 2 " in line:
            proc.send_signal(signal.SIGINT)
            break
    log = "".join(lines) + proc.communicate(timeout=120)[1]
    assert_clean(proc.returncode, log, 130)
    assert "Interrupted." in log


def test_the_data_workers_flag_sets_every_data_layers_count(tmp_path):
    code, log = run("time", "-model", write_net(tmp_path, "raw"), "-iterations", "1",
                    "-data_workers", "3")
    assert_clean(code, log, 0)
    assert "Decoding and transforming with 3 workers" in log


def test_data_threads_stop_before_exit_finalizers_run():
    """A finalizer made after the data path is imported (a reader's DB close)
    runs at exit only after every data thread stopped: atexit runs hooks last
    registered first, so data/threads.py orders weakref's hook before its own."""
    code = r"""
import os, time, weakref
from pycaffe_lowbit.data import threads
stopped = []
def work(stop):
    while not stop.is_set():
        time.sleep(0.001)
    stopped.append(True)
threads.start(work)
class Reader: pass
reader = Reader()
def close():
    os.write(2, b"finalizer ran after the thread stopped: %r\n" % bool(stopped))
weakref.finalize(reader, close)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=paths.ROOT, env=dict(os.environ, PYTHONPATH=paths.ROOT), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "finalizer ran after the thread stopped: True" in out.stderr, out.stderr
