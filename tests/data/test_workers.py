"""Data workers: batches and their random draws are the same for 1, 2 and 3
workers (raw, encoded, float Datums, ImageData, data-parallel strides); the
pool's errors; the count's settings; the zero-copy Datum reader against
protobuf's."""
import cv2
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.data import DataError, array_to_datum, open_db, parse_datum, workers
from pycaffe_lowbit.data.datum import encoded_datum, read_datum
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.parallel import world
from pycaffe_lowbit.proto import caffe_pb2

RECORDS = 23        # batches of 5 wrap around the database, mid-batch


def write_db(path, kind, backend_name="lmdb"):
    rng = np.random.default_rng(1)
    with open_db(str(path), backend_name, "w") as db:
        for i in range(RECORDS):
            h, w = 12 + i % 3, 13 + i % 2          # sizes differ: the crop's draws follow
            image = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), np.uint8), (3, 3), 1)
            if kind == "encoded":
                datum = encoded_datum(cv2.imencode(".png", image)[1].tobytes(), i)
            elif kind == "float":
                datum = array_to_datum(image.transpose(2, 0, 1).astype(np.float32) / 7, i)
            else:
                datum = array_to_datum(image.transpose(2, 0, 1), i)
            db.put("%04d" % i, datum.SerializeToString())
    return str(path)


def run_batches(text, n=7, phase=caffe.TRAIN):
    caffe.set_random_seed(1701)
    net = caffe.Net(parse_net_text(text), phase)
    out = []
    for _ in range(n):
        net.forward()
        out.append((backend.to_numpy(net.blobs["data"].data).copy(),
                    backend.to_numpy(net.blobs["label"].data).copy()))
    return out


def same(a, b):
    return all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1])
               for x, y in zip(a, b))


TRANSFORMS = ["crop_size: 10 mirror: true mean_value: 100 mean_value: 110 "
              "mean_value: 120 scale: 0.25", "mirror: true crop_size: 11"]


@pytest.mark.parametrize("kind", ["raw", "encoded", "float"])
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_data_batches_are_the_same_for_1_2_3_workers(tmp_path, kind, transform):
    source = write_db(tmp_path / "db", kind)
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" transform_param { %s } '
            'data_param { source: "%s" batch_size: 5 backend: LMDB workers: %%d '
            'prefetch: %%d } }' % (transform, source))
    one = run_batches(text % (1, 0))
    assert not np.array_equal(one[0][0], one[1][0])
    for count in (2, 3):
        for prefetch in (0, 3):
            assert same(one, run_batches(text % (count, prefetch)))


def test_image_data_with_shuffle_is_the_same_for_1_2_3_workers(tmp_path):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(11):
        name = str(tmp_path / ("%d.png" % i))
        cv2.imwrite(name, rng.integers(0, 256, (14 + i % 2, 16, 3), np.uint8))
        lines.append("%s %d" % (name, i))
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    text = ('layer { name: "d" type: "ImageData" top: "data" top: "label" transform_param '
            '{ crop_size: 12 mirror: true mean_value: 127 } image_data_param { source: "%s" '
            'batch_size: 4 shuffle: true workers: %%d } }' % (tmp_path / "list.txt"))
    one = run_batches(text % 1, n=6)
    assert same(one, run_batches(text % 2, n=6)) and same(one, run_batches(text % 3, n=6))


def test_data_parallel_ranks_keep_their_stride_with_workers(tmp_path, monkeypatch):
    source = write_db(tmp_path / "db", "raw")
    text = ('layer { name: "d" type: "Data" top: "data" top: "label" transform_param '
            '{ crop_size: 10 } data_param { source: "%s" batch_size: 3 backend: LMDB '
            'workers: %%d } }' % source)
    monkeypatch.setattr(world, "solver_count", lambda: 2)
    for rank in (0, 1):
        monkeypatch.setattr(world, "solver_rank", lambda rank=rank: rank)
        labels = [b[1] for b in run_batches(text % 3, n=4)]
        assert np.array_equal(np.concatenate(labels), (rank + 2 * np.arange(12)) % RECORDS)
        assert same(run_batches(text % 1, n=4), run_batches(text % 3, n=4))


def test_the_first_bad_record_of_a_batch_is_reported_for_any_count(tmp_path):
    path = str(tmp_path / "db")
    with open_db(path, "lmdb", "w") as db:
        for i in range(6):
            value = encoded_datum(b"junk", i) if i in (2, 4) else \
                encoded_datum(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1], i)
            db.put("%d" % i, value.SerializeToString())
    for count in (1, 2, 3):
        net = caffe.Net(parse_net_text(
            'layer { name: "d" type: "Data" top: "data" data_param { source: "%s" '
            'batch_size: 6 backend: LMDB workers: %d } }' % (path, count)), caffe.TEST)
        with pytest.raises(Exception, match=r"record 2 \(key '2'\): could not decode"):
            net.forward()


@pytest.mark.parametrize("count", [1, 2, 3])
def test_pool_runs_every_item_and_raises_the_lowest_failure(count):
    pool = workers.WorkerPool(count)
    seen = np.zeros(10, int)

    def work(i):
        seen[i] += 1
    pool.run(work, 10)
    assert (seen == 1).all()

    def fail(i):
        if i in (7, 4, 5):
            raise KeyError(i)
    with pytest.raises(KeyError, match="4"):
        pool.run(fail, 10)
    pool.run(work, 2)                       # fewer items than workers
    assert list(seen[:3]) == [2, 2, 1]


def test_worker_count_settings(monkeypatch):
    monkeypatch.delenv(workers.ENV, raising=False)
    assert workers.default_workers() == min(workers.cpu_count(), workers.MAX_DEFAULT)
    monkeypatch.setenv(workers.ENV, "3")
    assert workers.resolve(0) == 3 and workers.resolve(2) == 2
    workers.set_override(5)
    try:
        assert workers.resolve(2) == 5
    finally:
        workers.set_override(0)
    monkeypatch.setenv(workers.ENV, "many")
    with pytest.raises(ValueError, match="LOWBIT_DATA_WORKERS must be a positive integer"):
        workers.default_workers()


def _datums():
    yield array_to_datum(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), label=-3)
    yield array_to_datum(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 2, 2), 9)
    yield encoded_datum(b"\x89PNG....", 1 << 30)
    yield caffe_pb2.Datum(channels=1, height=1, width=2, float_data=[1.5, -2.0])
    unpacked = caffe_pb2.Datum(channels=1, height=1, width=3, label=2)
    unpacked.float_data.extend([0.25, 3.0, 7.5])
    yield unpacked


FIELDS = ("channels", "height", "width", "label", "encoded")


def test_read_datum_gives_protobufs_fields_without_copying_the_pixels():
    for datum in _datums():
        raw = datum.SerializeToString()
        ours, theirs = read_datum(memoryview(raw)), parse_datum(raw)
        assert [getattr(ours, f) for f in FIELDS] == [getattr(theirs, f) for f in FIELDS]
        assert bytes(ours.data) == theirs.data
        assert np.array_equal(np.asarray(ours.float_data, np.float32),
                              np.asarray(theirs.float_data, np.float32))
    raw = bytearray(array_to_datum(np.zeros((1, 2, 2), np.uint8)).SerializeToString())
    view = read_datum(raw).data
    raw[raw.index(b'"\x04') + 2] = 77           # a view of the record, not a copy
    assert view[0] == 77
    # unpacked float_data on the wire (field 6, wire type 5), then a field only
    # protobuf knows how to skip (number 99): same values either way
    wire = bytes([0x35]) + np.float32(2.5).tobytes() + bytes([0x08, 0x01, 0x98, 0x06, 0x05])
    assert read_datum(wire).channels == 1 and list(read_datum(wire).float_data) == [2.5]
    with pytest.raises(DataError, match="db record 3 is not a Datum"):
        read_datum(b"\xff\xff\xff not a datum", "db record 3")
