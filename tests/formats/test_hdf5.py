"""io.hdf5: Caffe's .caffemodel.h5 layout (/data/<layer>/<i>), read and written."""
import os

import h5py
import numpy as np
import pytest

from pycaffe_lowbit.formats import hdf5


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return [("conv1", [rng.standard_normal((4, 1, 3, 3), dtype=np.float32),
                       rng.standard_normal(4, dtype=np.float32)]),
            ("relu1", []),
            ("ip1", [rng.standard_normal((5, 100), dtype=np.float32)])]


def test_layout_is_caffes(tmp_path):
    path = tmp_path / "w.caffemodel.h5"
    hdf5.write_weights_hdf5(_arrays(), path)
    with h5py.File(path, "r") as f:
        assert list(f.keys()) == ["data"]
        assert sorted(f["data"].keys()) == ["conv1", "ip1", "relu1"]
        assert sorted(f["data/conv1"].keys()) == ["0", "1"]
        assert f["data/conv1/0"].shape == (4, 1, 3, 3)
        assert f["data/conv1/0"].dtype == np.float32
        assert len(f["data/relu1"]) == 0


def test_round_trip_in_net_order(tmp_path):
    path = tmp_path / "w.h5"
    layers = _arrays()
    hdf5.write_weights_hdf5(layers, path)
    back = hdf5.read_weights_hdf5(path)
    assert list(back) == ["conv1", "relu1", "ip1"]
    for name, arrays in layers:
        assert len(back[name]) == len(arrays)
        for a, b in zip(arrays, back[name]):
            assert b.dtype == a.dtype
            np.testing.assert_array_equal(a, b)


def test_reads_a_file_written_as_caffe_does(tmp_path):
    """Caffe's HDF5 files keep no creation order: groups come back by name."""
    path = tmp_path / "caffe.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("data/b/0", data=np.ones((2, 3), np.float32))
        f.create_dataset("data/b/1", data=np.zeros(2, np.float32))
        f.create_group("data/a")
        f.create_dataset("data/c/10", data=np.full(1, 7.0))
        f.create_dataset("data/c/2", data=np.full(1, 3.0))
    back = hdf5.read_weights_hdf5(path)
    assert list(back) == ["a", "b", "c"]
    assert back["a"] == []
    assert [x.shape for x in back["b"]] == [(2, 3), (2,)]
    assert back["c"][2][0] == 3 and back["c"][10][0] == 7      # numeric, not string, order
    assert back["c"][0] is None and back["c"][9] is None


def test_missing_index_for_a_shared_param(tmp_path):
    path = tmp_path / "w.h5"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    hdf5.write_weights_hdf5([("ip2", [None, w])], path)   # blob 0 shared: not saved
    back = hdf5.read_weights_hdf5(path)
    assert back["ip2"][0] is None
    np.testing.assert_array_equal(back["ip2"][1], w)


def test_diffs_and_names_with_slashes(tmp_path):
    path = tmp_path / "w.h5"
    a = np.ones((2, 2), np.float32)
    layers = [("inception_3a/1x1", [a]), ("inception_3a/3x3", [a * 2]), ("inception_3a", [a * 3])]
    diffs = [(name, [x * 10 for x in arrays]) for name, arrays in layers]
    hdf5.write_weights_hdf5(layers, path, diffs=diffs)
    data = hdf5.read_weights_hdf5(path)
    assert sorted(data) == ["inception_3a", "inception_3a/1x1", "inception_3a/3x3"]
    assert data["inception_3a/3x3"][0][0, 0] == 2 and data["inception_3a"][0][0, 0] == 3
    diff = hdf5.read_weights_hdf5(path, group="diff")
    assert diff["inception_3a/1x1"][0][0, 0] == 10


@pytest.mark.parametrize("layers, message", [
    ([("a", []), ("a", [])], "two layers are named 'a'"),
    ([("", [])], "cannot store layer name ''"),
    ([("x/", [])], "cannot store layer name 'x/'"),
])
def test_bad_layer_names(tmp_path, layers, message):
    path = tmp_path / "w.h5"
    with pytest.raises(ValueError, match=str(path) + ": " + message):
        hdf5.write_weights_hdf5(layers, path)
    assert not os.listdir(tmp_path)                        # nothing left behind


def test_write_is_atomic(tmp_path):
    path = tmp_path / "w.h5"
    hdf5.write_weights_hdf5(_arrays(), path)
    with pytest.raises(ValueError):
        hdf5.write_weights_hdf5([("ip1", [np.zeros(3)]), ("ip1", [])], path)
    assert list(hdf5.read_weights_hdf5(path)) == ["conv1", "relu1", "ip1"]
    assert os.listdir(tmp_path) == ["w.h5"]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        hdf5.read_weights_hdf5(tmp_path / "nope.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5: not an HDF5 file"):
        hdf5.read_weights_hdf5(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("weights", data=np.zeros(2))
    with pytest.raises(ValueError, match=r"other.h5: not Caffe HDF5 weights: no /data group "
                                         r"\(found: weights\)"):
        hdf5.read_weights_hdf5(other)
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("data/ip/weight", data=np.zeros(2))
    with pytest.raises(ValueError, match="bad.h5: layer 'ip' has a dataset named 'weight'"):
        hdf5.read_weights_hdf5(bad)
