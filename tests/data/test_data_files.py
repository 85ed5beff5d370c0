"""HDF5Data / HDF5Output, MemoryData (net.set_input_arrays) and WindowData."""
import os

import cv2
import h5py
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers.base import LayerSetupError


def net_of(text, phase=caffe.TEST):
    return caffe.Net(parse_net_text(text), phase)


def host(blob):
    return backend.to_numpy(blob.data).copy()


# -- HDF5Data ------------------------------------------------------------------------------

@pytest.fixture
def h5_files(tmp_path):
    """Two files, 5 and 3 rows: data row i is full of i, label i (ids 0..7)."""
    paths = []
    for name, ids in (("a.h5", range(5)), ("b.h5", range(5, 8))):
        ids = np.array(list(ids), np.float64)
        with h5py.File(str(tmp_path / name), "w") as f:
            f["data"] = ids[:, None, None] * np.ones((1, 2, 3))
            f["label"] = ids
        paths.append(str(tmp_path / name))
    listing = tmp_path / "list.txt"
    listing.write_text("%s\n  %s\n" % tuple(paths))
    return str(listing)


def h5_net(source, batch, extra=""):
    return net_of('layer { name: "h5" type: "HDF5Data" top: "data" top: "label" '
                  'hdf5_data_param { source: "%s" batch_size: %d %s } }'
                  % (source, batch, extra))


def test_hdf5_data_reads_across_file_boundaries(h5_files, xp):
    net = h5_net(h5_files, 3)
    assert net.blobs["data"].shape == (3, 2, 3) and net.blobs["label"].shape == (3,)
    labels = []
    for _ in range(6):                      # 18 rows: a, b, a, b, a (wraps twice)
        net.forward()
        data, label = host(net.blobs["data"]), host(net.blobs["label"])
        assert np.array_equal(data, label[:, None, None] * np.ones((1, 2, 3)))
        labels.extend(label)
    assert labels == [i % 8 for i in range(18)]


def test_hdf5_data_shuffle_keeps_rows_of_a_file_together(h5_files):
    net = h5_net(h5_files, 4, "shuffle: true")
    labels = []
    for _ in range(8):
        net.forward()
        labels.extend(host(net.blobs["label"]).astype(int))
    passes = np.array(labels).reshape(4, 8)
    for order in passes:
        assert sorted(order) == list(range(8))
        first = set(order[:5]) if order[0] < 5 else set(order[:3])
        assert first in ({0, 1, 2, 3, 4}, {5, 6, 7})         # files are not interleaved
    assert len({tuple(p) for p in passes}) > 1


def test_hdf5_output_then_hdf5_data_round_trip(tmp_path):
    out = str(tmp_path / "out.h5")
    net = net_of('layer { name: "m" type: "MemoryData" top: "data" top: "label" '
                 'memory_data_param { batch_size: 4 channels: 2 height: 1 width: 3 } } '
                 'layer { name: "o" type: "HDF5Output" bottom: "data" bottom: "label" '
                 'hdf5_output_param { file_name: "%s" } }' % out)
    assert os.path.exists(out)                        # created at setup, as Caffe
    data = np.random.default_rng(0).standard_normal((8, 2, 1, 3)).astype(np.float32)
    labels = np.arange(8, dtype=np.float32)
    net.set_input_arrays(data, labels)
    for k in range(2):                                # Caffe aborts at a second forward;
        net.forward()                                 # we keep the last batch
        with h5py.File(out, "r") as f:
            assert f["data"].dtype == np.float32 and f["label"].shape == (4, 1, 1, 1)
            assert np.array_equal(f["data"][()], data[4 * k:4 * k + 4])
            assert np.array_equal(f["label"][()].ravel(), labels[4 * k:4 * k + 4])
    listing = tmp_path / "list.txt"
    listing.write_text(out + "\n")
    back = h5_net(str(listing), 4)
    back.forward()
    assert np.array_equal(back.blobs["data"].data, data[4:])
    assert back.blobs["label"].shape == (4, 1, 1, 1)


def test_hdf5_errors(h5_files, tmp_path):
    with pytest.raises(LayerSetupError, match="does not transform data"):
        net_of('layer { name: "h5" type: "HDF5Data" top: "data" transform_param { scale: 2 }'
               ' hdf5_data_param { source: "%s" batch_size: 1 } }' % h5_files)
    with pytest.raises(LayerSetupError, match=r"a.h5 \(listed in .*list.txt line 1\) has no "
                                              r"dataset 'feat' for top 'feat' \(datasets: "
                                              r"data, label\)"):
        net_of('layer { name: "h5" type: "HDF5Data" top: "feat" '
               'hdf5_data_param { source: "%s" batch_size: 1 } }' % h5_files)
    with pytest.raises(LayerSetupError, match=r"--set 'layer\[h5\].hdf5_data_param.source="):
        h5_net(str(tmp_path / "none.txt"), 1)
    listing = tmp_path / "gone.txt"
    listing.write_text(str(tmp_path / "a.h5") + "\n" + str(tmp_path / "gone.h5") + "\n")
    net = h5_net(str(listing), 4)
    net.forward()
    with pytest.raises(LayerSetupError, match=r"HDF5 file '.*gone.h5' .*not found"):
        net.forward()


# -- MemoryData ----------------------------------------------------------------------------

MEMORY = ('layer { name: "m" type: "MemoryData" top: "data" top: "label" '
          'memory_data_param { batch_size: 3 channels: 2 height: 2 width: 2 } }')


def test_memory_data_serves_batches_in_order(xp):
    net = net_of(MEMORY)
    assert net.blobs["data"].shape == (3, 2, 2, 2) and net.blobs["label"].shape == (3,)
    data = np.arange(6 * 8, dtype=np.float64).reshape(6, 2, 2, 2)
    net.set_input_arrays(data, np.arange(6.0))
    for start in (0, 3, 0):
        net.forward()
        assert np.array_equal(host(net.blobs["data"]), data[start:start + 3])
        assert net.blobs["label"].shape == (3, 1, 1, 1)          # as Caffe's forward
        assert host(net.blobs["label"]).ravel().tolist() == [start, start + 1, start + 2]


def test_memory_data_checks():
    net = net_of(MEMORY)
    with pytest.raises(LayerSetupError, match="call net.set_input_arrays"):
        net.forward()
    ok = np.zeros((6, 2, 2, 2), np.float32)
    for data, labels, message in [
            (ok[:5], np.zeros(5), "multiple of batch size 3 \\(got 5\\)"),
            (ok[:, :1], np.zeros(6), "wrong number of channels: 1, the layer has 2"),
            (ok[:, :, :, :1], np.zeros(6), "wrong number of width"),
            (ok[0], np.zeros(6), "must be 4-d"),
            (ok, np.zeros(3), "same first dimension \\(6 vs 3\\)"),
            (ok, np.zeros((6, 2)), "labels array must be")]:
        with pytest.raises(LayerSetupError, match=message):
            net.set_input_arrays(data, labels)
    other = net_of('layer { name: "i" type: "Input" top: "x" input_param { shape { dim: 1 } } }')
    with pytest.raises(RuntimeError, match="first layer is a MemoryData layer"):
        other.set_input_arrays(ok, np.zeros(6))


# -- WindowData ----------------------------------------------------------------------------

@pytest.fixture
def scene(tmp_path):
    image = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "scene.png"), image)
    return image, tmp_path


def window_net(tmp_path, windows, crop=8, extra="", transform="", batch=2, phase=caffe.TRAIN):
    lines = ["# 0", "scene.png", "3 30 40", str(len(windows))] + windows
    (tmp_path / "windows.txt").write_text("\n".join(lines) + "\n")
    return net_of('layer { name: "w" type: "WindowData" top: "data" top: "label" '
                  'transform_param { crop_size: %d %s } window_data_param { source: "%s" '
                  'root_folder: "%s/" batch_size: %d fg_threshold: 0.5 bg_threshold: 0.3 '
                  'fg_fraction: 0.5 %s } }' % (crop, transform, tmp_path / "windows.txt",
                                               tmp_path, batch, extra), phase)


def chw(image):
    return image.transpose(2, 0, 1).astype(np.float32)


def test_window_data_warps_background_then_foreground(scene):
    image, tmp = scene
    net = window_net(tmp, ["0 0.1 0 0 9 9", "1 0.4 3 3 8 8", "2 0.9 5 4 24 19"],
                     extra="scale: 0.5", transform="mean_value: 10 mean_value: 20 "
                                                   "mean_value: 30")
    net.forward()
    data, labels = net.blobs["data"].data, net.blobs["label"].data
    assert data.shape == (2, 3, 8, 8) and labels.tolist() == [0, 2]   # 0.4: dropped
    mean = np.array([10, 20, 30], np.float32)[:, None, None]
    for k, (x1, y1, x2, y2) in enumerate([(0, 0, 9, 9), (5, 4, 24, 19)]):
        warped = cv2.resize(image[y1:y2 + 1, x1:x2 + 1], (8, 8))
        assert np.array_equal(data[k], (chw(warped) - mean) * np.float32(0.5))


def test_window_data_context_pad_and_mirror(scene):
    image, tmp = scene
    # crop 10, pad 1: the 8x8 window at the corner grows to (-1..9): 1 pixel of
    # zero padding at the top and left, the image part (0..9) warped to 9x9.
    net = window_net(tmp, ["0 0.1 0 0 7 7", "3 0.8 0 0 7 7"], crop=10,
                     extra="context_pad: 1", transform="mirror: true", batch=40)
    net.forward()
    data = net.blobs["data"].data
    warped = chw(cv2.resize(image[0:10, 0:10], (9, 9)))
    flips = 0
    for item in data:
        assert not item[:, 0, :].any()
        if item[:, :, 0].any():                    # mirrored: the padding goes right
            assert np.array_equal(item[:, 1:, :9], warped[:, :, ::-1])
            assert not item[:, :, 9].any()
            flips += 1
        else:
            assert np.array_equal(item[:, 1:, 1:], warped)
    assert 0 < flips < 40


def test_window_data_square_mode(scene):
    image, tmp = scene
    # 8 wide, 4 tall at (10, 10): squared about its centre (14, 12) to rows 8..16,
    # columns 10..18.
    net = window_net(tmp, ["0 0.0 0 0 5 5", "1 0.6 10 10 17 13"], extra='crop_mode: "square"')
    net.forward()
    expected = chw(cv2.resize(image[8:17, 10:19], (8, 8)))
    assert np.array_equal(net.blobs["data"].data[1], expected)


def test_window_data_errors(scene):
    _, tmp = scene
    with pytest.raises(LayerSetupError, match="line 5: a foreground window .* needs a class"):
        window_net(tmp, ["0 0.9 0 0 5 5"])
    with pytest.raises(LayerSetupError, match="line 6: expected an overlap, got 'high'"):
        window_net(tmp, ["0 0.1 0 0 5 5", "1 high 0 0 5 5"])
    with pytest.raises(LayerSetupError, match="needs transform_param.crop_size"):
        window_net(tmp, ["0 0.1 0 0 5 5"], crop=0)
    with pytest.raises(LayerSetupError, match="no foreground windows"):
        window_net(tmp, ["0 0.1 0 0 5 5"])
    net = window_net(tmp, ["0 0.1 0 0 50 5", "1 0.9 0 0 5 5"])
    with pytest.raises(LayerSetupError, match=r"window \(0, 0, 50, 5\) .* outside"):
        net.forward()
