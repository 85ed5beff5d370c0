"""convert_cifar and convert_mnist on small files written in the exact
distribution formats: keys, Datum bytes, the mean, and errors."""
import gzip
import os
import pickle

import numpy as np
import pytest

from pycaffe_lowbit.data import DataError, datum_to_array
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.data.tools.cifar import convert_cifar
from pycaffe_lowbit.data.tools.image_mean import compute_image_mean
from pycaffe_lowbit.data.tools.mnist import convert_mnist
from support.tool_cases import assert_one_line_error, datums, records, run_cli

RNG = np.random.default_rng(7)
# CIFAR-10: five train batches of 3 and a test batch of 4; labels 0..9.
C10 = [(RNG.integers(0, 256, (n, 3072), dtype=np.uint8), RNG.integers(0, 10, n))
       for n in (3, 3, 3, 3, 3, 4)]
# CIFAR-100: train of 6, test of 2; (coarse 0..19, fine 0..99).
C100 = [(RNG.integers(0, 256, (n, 3072), dtype=np.uint8), RNG.integers(0, 20, n),
         RNG.integers(0, 100, n)) for n in (6, 2)]


def py2_pickle(obj, path):
    """A pickle like the CIFAR python files (Python 2, numpy.core names)."""
    data = pickle.dumps(obj, protocol=2).replace(b"numpy._core.multiarray",
                                                 b"numpy.core.multiarray")
    path.write_bytes(data)


def write_cifar10(folder, binary):
    folder.mkdir(parents=True)
    names = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
    for name, (data, labels) in zip(names, C10):
        if binary:
            rows = np.concatenate([labels[:, None].astype(np.uint8), data], axis=1)
            (folder / (name + ".bin")).write_bytes(rows.tobytes())
        else:
            py2_pickle({b"data": data, b"labels": [int(v) for v in labels],
                        b"batch_label": b"x"}, folder / name)


def write_cifar100(folder, binary):
    folder.mkdir(parents=True)
    for name, (data, coarse, fine) in zip(("train", "test"), C100):
        if binary:
            rows = np.concatenate([coarse[:, None], fine[:, None]], 1).astype(np.uint8)
            (folder / (name + ".bin")).write_bytes(np.concatenate([rows, data], 1).tobytes())
        else:
            py2_pickle({b"data": data, b"fine_labels": fine.tolist(),
                        b"coarse_labels": coarse.tolist()}, folder / name)


def expected_raw(data, labels):
    """Caffe's CIFAR Datum bytes: channels, height, width, data, label."""
    return [caffe_pb2.Datum(channels=3, height=32, width=32, data=row.tobytes(),
                            label=int(lab)).SerializeToString() for row, lab in zip(data, labels)]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "python"])
def test_cifar10_both_distributions(tmp_path, binary):
    write_cifar10(tmp_path / "in" / "cifar-10-batches-x", binary)
    src = tmp_path / "in" / "cifar-10-batches-x"
    train, test, mean = convert_cifar(str(src), str(tmp_path / "out"))
    assert train.endswith("cifar10_train_lmdb") and test.endswith("cifar10_test_lmdb")
    data = np.concatenate([d for d, _ in C10[:5]])
    labels = np.concatenate([lab for _, lab in C10[:5]])
    assert records(train) == [(b"%05d" % i, v) for i, v in enumerate(expected_raw(data, labels))]
    assert records(test) == [(b"%05d" % i, v) for i, v in enumerate(expected_raw(*C10[5]))]
    key, datum = datums(train)[4]
    assert np.array_equal(datum_to_array(datum)[0], data[4, :1024].reshape(32, 32))  # R plane
    proto = caffe_pb2.BlobProto()
    proto.ParseFromString(open(mean, "rb").read())
    assert np.array_equal(np.asarray(proto.data, np.float32).reshape(3, 32, 32),
                          compute_image_mean(train))


def test_cifar_archive_folder_is_found(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-bin", True)
    out = run_cli(tmp_path, "convert_cifar", ".", "out", "leveldb")
    assert out.returncode == 0, out.stderr
    for line in ("Writing Training data", "Training Batch 5", "Writing Testing data",
                 "mean_value channel [2]:"):
        assert line in out.stderr
    assert len(records(tmp_path / "out" / "cifar10_train_leveldb", "leveldb")) == 15


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "python"])
@pytest.mark.parametrize("label", ["fine", "coarse"])
def test_cifar100_fine_and_coarse_labels(tmp_path, binary, label):
    write_cifar100(tmp_path / "in", binary)
    train, test, _ = convert_cifar(str(tmp_path / "in"), str(tmp_path / "out"), label=label)
    assert train.endswith("cifar100_train_lmdb")
    for path, (data, coarse, fine) in ((train, C100[0]), (test, C100[1])):
        want = fine if label == "fine" else coarse
        assert [v for _, v in records(path)] == expected_raw(data, want)


def test_cifar_errors(tmp_path):
    out = run_cli(tmp_path, "convert_cifar", ".", "out")
    assert_one_line_error(out, "holds no CIFAR distribution")
    write_cifar10(tmp_path / "bad", True)
    (tmp_path / "bad" / "data_batch_2.bin").write_bytes(b"\0" * 3072)
    out = run_cli(tmp_path, "convert_cifar", "bad", "out")
    assert_one_line_error(out, "data_batch_2.bin: 3072 bytes is not a whole number of "
                               "3073-byte CIFAR records")
    assert not (tmp_path / "out" / "cifar10_train_lmdb").exists()
    write_cifar10(tmp_path / "lab", True)
    rows = np.zeros((2, 3073), np.uint8)
    rows[1, 0] = 10
    (tmp_path / "lab" / "test_batch.bin").write_bytes(rows.tobytes())
    with pytest.raises(DataError, match=r"test_batch.bin record 1: label 10 is outside 0..9"):
        convert_cifar(str(tmp_path / "lab"), str(tmp_path / "out2"))
    assert not os.listdir(tmp_path / "out2")  # the finished train database is removed too


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar10(tmp_path / "evil", False)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s" % marker,))
    payload = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=2)
    (tmp_path / "evil" / "test_batch").write_bytes(payload)
    with pytest.raises(DataError, match="test_batch is not a CIFAR python batch.*posix.system"):
        convert_cifar(str(tmp_path / "evil"), str(tmp_path / "out"))
    assert not marker.exists()


def idx(array, magic):
    header = np.array([magic, *array.shape], ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_files(tmp_path, gz):
    images = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], np.uint8)
    pack = gzip.compress if gz else bytes
    (tmp_path / "img").write_bytes(pack(idx(images, 2051)))
    (tmp_path / "lab").write_bytes(pack(idx(labels, 2049)))
    out = run_cli(tmp_path, "convert_mnist", "img", "lab", "db", "--backend=lmdb")
    assert out.returncode == 0, out.stderr
    for line in ("A total of 5 items.", "Rows: 28 Cols: 28", "Processed 5 files."):
        assert line in out.stderr
    want = [caffe_pb2.Datum(channels=1, height=28, width=28, data=img.tobytes(),
                            label=int(lab)).SerializeToString() for img, lab in zip(images, labels)]
    assert records(tmp_path / "db") == [(b"%08d" % i, v) for i, v in enumerate(want)]


def test_mnist_errors(tmp_path):
    images = np.zeros((3, 4, 4), np.uint8)
    (tmp_path / "img").write_bytes(idx(images, 2051))
    (tmp_path / "lab").write_bytes(idx(np.zeros(2), 2049))
    (tmp_path / "short").write_bytes(idx(images, 2051)[:-1])
    out = run_cli(tmp_path, "convert_mnist", "lab", "lab", "db")
    assert_one_line_error(out, "lab: not an IDX image file (magic number 2049, expected 2051)")
    out = run_cli(tmp_path, "convert_mnist", "img", "lab", "db")
    assert_one_line_error(out, "img holds 3 images but lab holds 2 labels")
    with pytest.raises(DataError, match="short: header says 3 x 4 x 4 = 48 values but the "
                                        "file holds 47"):
        convert_mnist(str(tmp_path / "short"), str(tmp_path / "lab"), str(tmp_path / "db"))
    with pytest.raises(DataError, match="IDX file not found: .*nope"):
        convert_mnist(str(tmp_path / "nope"), str(tmp_path / "lab"), str(tmp_path / "db"))
    assert not (tmp_path / "db").exists()
