"""Datum and the LMDB / LevelDB wrappers: Caffe's records read exactly, our writes read back."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.data import DataError, array_to_datum, datum_to_array, open_db, parse_datum
from pycaffe_lowbit.data.db import LMDB
from support import paths

IO = os.path.join(paths.GOLDEN, "io")


@pytest.mark.parametrize("name", ["images_lmdb", "images_lmdb_gray_resized", "images_lmdb_encoded"])
def test_reads_convert_imageset_output(name):
    golden = np.load(os.path.join(IO, name + ".npz"))
    records = list(open_db(os.path.join(IO, name)).items())
    assert [k.decode() for k, _ in records] == list(golden["keys"])
    for i, (key, value) in enumerate(records):
        datum = parse_datum(value)
        assert datum.label == golden["labels"][i] and datum.encoded == golden["encoded"][i]
        if datum.encoded:
            assert bytes(datum.data) == bytes(golden["data__%d" % i])
            decoded = golden["decoded__%d" % i]
            pixels = datum_to_array(datum)
            assert np.array_equal(pixels.transpose(1, 2, 0).squeeze(), decoded)
        else:
            assert np.array_equal(datum_to_array(datum), golden["data__%d" % i])
    assert not os.path.exists(os.path.join(IO, name, "lock.mdb"))


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_write_then_read_in_key_order(tmp_path, backend, monkeypatch):
    monkeypatch.setattr(LMDB, "_MAP_SIZE", 1 << 16)  # forces the map to grow
    path = str(tmp_path / "db")
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (3, 5, 4), dtype=np.uint8) for _ in range(200)]
    with open_db(path, backend, "w") as db:
        for i in reversed(range(200)):
            db.put("%08d" % i, array_to_datum(arrays[i], label=i % 10).SerializeToString())
    db = open_db(path, backend)
    assert len(db) == 200
    for i, (key, value) in enumerate(db.items()):
        datum = parse_datum(value)
        assert key == b"%08d" % i and datum.label == i % 10
        assert np.array_equal(datum_to_array(datum), arrays[i])


def test_float_datum_round_trip():
    array = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    datum = array_to_datum(array, label=3)
    assert not datum.data and len(datum.float_data) == 24
    assert np.array_equal(datum_to_array(datum), array)


def test_errors_name_the_database_and_record(tmp_path):
    with pytest.raises(DataError, match="LMDB database not found: .*nowhere"):
        open_db(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="not an LMDB database"):
        open_db(str(tmp_path))
    with pytest.raises(DataError, match="already exists"):
        open_db(str(tmp_path), "lmdb", "w")
    with pytest.raises(DataError, match="record 7 is not a Datum"):
        parse_datum(b"\xff\xff\xff", "record 7")
    bad = array_to_datum(np.zeros((1, 2, 2), np.uint8))
    bad.height = 3
    with pytest.raises(DataError, match="record 1: Datum data has 4 bytes"):
        datum_to_array(bad, where="record 1")


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_several_readers_of_one_database_at_once(tmp_path, backend):
    if backend == "leveldb":
        pytest.importorskip("plyvel")
    path = str(tmp_path / "db")
    with open_db(path, backend, "w") as db:
        for i in range(3):
            db.put("%d" % i, b"v%d" % i)
    a, b = open_db(path, backend), open_db(path, backend)   # one handle, two cursors
    walk = a.items()
    assert next(walk) == (b"0", b"v0")
    assert [k for k, _ in b.items()] == [b"0", b"1", b"2"]
    assert next(walk) == (b"1", b"v1")
    a.close()
    assert len(b) == 3 and [k for k, _ in b.items()][-1] == b"2"
    b.close()
    with open_db(path, backend, "a") as again:             # all closed: writable again
        again.put("3", b"v3")
    assert len(open_db(path, backend)) == 4
