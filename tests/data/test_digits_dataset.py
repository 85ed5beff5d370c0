"""The embedded digits dataset: split, pixels, keys, mean, and build on first use."""
import os

import numpy as np

from pycaffe_lowbit.data import datum_to_array
from pycaffe_lowbit.data.datasets import digits, ensure_embedded
from pycaffe_lowbit.data.tools.image_mean import compute_image_mean, mean_to_proto
from support.tool_cases import datums, records, run_cli


def test_split_is_stratified_and_disjoint():
    images, labels = digits.load_digits()
    assert images.shape == (1797, 8, 8) and images.max() == 16 and images.min() == 0
    test = digits.split(labels)
    assert test.sum() == 359
    per_class = np.bincount(labels[test], minlength=10) / np.bincount(labels)
    assert np.all(np.abs(per_class - 0.2) < 0.01)


def test_pixels_scale_then_upscale():
    """v -> round(v * 255 / 16), then bilinear 2x: output pixel 2i+d samples
    the grid at i - 1/4 + d/2, so a lone pixel spreads as 3/4 x 3/4 weights."""
    grid = np.zeros((2, 8, 8))
    grid[0, 3, 4] = 16
    grid[0, 0, 0] = 8
    grid[1] = 16
    out = digits.to_uint8(grid)
    assert out.shape == (2, 16, 16) and out.dtype == np.uint8
    assert np.all(out[1] == 255)
    assert out[0, 0, 0] == 128  # round(8 * 255 / 16); the border is replicated
    assert np.all(out[0, 6:8, 8:10] == round(255 * 0.75 * 0.75))
    assert out[0, 5, 8] == round(255 * 0.25 * 0.75)
    assert np.array_equal(digits.to_uint8(grid, size=8)[0], np.rint(grid[0] * 255 / 16))


def test_build_writes_lmdbs_and_mean(tmp_path):
    out = run_cli(tmp_path, "data", "digits", "--out", "d")
    assert out.returncode == 0, out.stderr
    assert "1438 train and 359 test images, 1x16x16" in out.stderr
    train = datums(tmp_path / "d" / "digits_train_lmdb")
    test = datums(tmp_path / "d" / "digits_test_lmdb")
    assert len(train) == 1438 and len(test) == 359
    _, labels = digits.load_digits()
    samples = sorted(int(k[9:]) for k, _ in train + test)
    assert samples == list(range(1797))
    assert [k[:9] for k, _ in train] == ["%08d_" % i for i in range(1438)]
    for key, datum in train[:50] + test[:50]:
        assert datum.label == labels[int(key[9:])]
        assert datum_to_array(datum).shape == (1, 16, 16)
    assert len({d.label for _, d in train[:64]}) == 10  # every class in the first batch
    mean = open(tmp_path / "d" / "mean.binaryproto", "rb").read()
    want = mean_to_proto(compute_image_mean(str(tmp_path / "d" / "digits_train_lmdb")))
    assert mean == want.SerializeToString()
    again = run_cli(tmp_path, "data", "digits", "--out", "d")
    assert "already in d" in again.stderr


def test_ensure_embedded_builds_only_canonical_missing_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not ensure_embedded("data/other/digits_train_lmdb")
    assert not ensure_embedded("data/digits/train_lmdb")
    assert not os.path.exists("data")
    assert ensure_embedded(os.path.join("data", "digits", "digits_test_lmdb"))
    assert sorted(os.listdir("data/digits")) == ["digits_test_lmdb", "digits_train_lmdb",
                                                 "mean.binaryproto"]
    assert not ensure_embedded("data/digits/digits_train_lmdb")  # exists now
    first = records("data/digits/digits_train_lmdb")
    digits.build_digits(str(tmp_path / "again"))
    assert records(tmp_path / "again" / "digits_train_lmdb") == first  # deterministic


def test_data_layer_builds_the_dataset_on_first_use(tmp_path, monkeypatch):
    import pycaffe_lowbit as caffe
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.prototxt").write_text(
        'layer { name: "d" type: "Data" top: "data" top: "label" '
        'data_param { source: "data/digits/digits_test_lmdb" batch_size: 359 backend: LMDB } }')
    net = caffe.Net("net.prototxt", caffe.TEST)
    net.forward()
    assert net.blobs["data"].data.shape == (359, 1, 16, 16)
    _, labels = digits.load_digits()
    assert np.array_equal(net.blobs["label"].data, labels[digits.split(labels)])
