"""convert: caffemodel <-> npz / HDF5 round trips, and Caffe's upgrade tools."""
import filecmp
import os

import numpy as np
import pytest

from pycaffe_lowbit import cli
from pycaffe_lowbit.convert import upgrade, weights
from pycaffe_lowbit.formats import caffemodel, hdf5
from pycaffe_lowbit.formats.blobproto import blob_array
from support import paths

DATA = os.path.join(paths.GOLDEN)
V1 = os.path.join(DATA, "io", "v1_net.caffemodel")
V1_UP = os.path.join(DATA, "io", "v1_net.upgraded.caffemodel")
NET = os.path.join(DATA, "nets", "cifar10_full.caffemodel")
HWGQ = os.path.join(DATA, "hwgq", "deploy", "deploy_lenet_bw.caffemodel")  # the fork's schema


def _blobs(path):
    net = caffemodel.read_net_binary(path)
    return [(l.name, [blob_array(b) for b in l.blobs]) for l in net.layer if len(l.blobs)]


def _assert_same_blobs(a, b):
    assert [n for n, _ in a] == [n for n, _ in b]
    for (_, xs), (_, ys) in zip(a, b):
        assert len(xs) == len(ys)
        for x, y in zip(xs, ys):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x.reshape(y.shape), y)


@pytest.mark.parametrize("src", [NET, V1_UP, HWGQ])
def test_caffemodel_npz_caffemodel_is_byte_identical(tmp_path, src):
    npz, back = tmp_path / "w.npz", tmp_path / "back.caffemodel"
    n = weights.caffemodel_to_npz(src, npz)
    assert n == sum(len(x) for _, x in _blobs(src))
    weights.npz_to_caffemodel(npz, back)
    if src == HWGQ:  # its BatchNorm param specs are upgraded away on reading, as Caffe does
        assert back.read_bytes() == caffemodel.read_net_binary(src).SerializeToString()
    else:
        assert filecmp.cmp(src, back, shallow=False)


def test_npz_has_one_named_array_per_blob(tmp_path):
    weights.caffemodel_to_npz(V1_UP, tmp_path / "w.npz")
    ref = np.load(os.path.join(DATA, "io", "v1_net.npz"))
    with np.load(tmp_path / "w.npz") as d:
        assert sorted(d[weights.LEGACY_KEY]) == ["conv1/0", "conv1/1", "ip1/0", "ip1/1"]
        for key in ("conv1/0", "conv1/1", "ip1/0", "ip1/1"):
            golden = ref["param__" + key.replace("/", "__")]
            assert d[key].ndim == 4  # the legacy dims are kept
            np.testing.assert_array_equal(d[key].ravel(), golden.ravel())


def test_v1_caffemodel_converts_upgraded(tmp_path):
    weights.caffemodel_to_npz(V1, tmp_path / "w.npz")
    weights.npz_to_caffemodel(tmp_path / "w.npz", tmp_path / "back.caffemodel")
    assert filecmp.cmp(V1_UP, tmp_path / "back.caffemodel", shallow=False)


def test_hand_made_npz_gives_named_layers(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.savez(tmp_path / "h.npz", **{"fc/0": w, "fc/1": np.ones(2, np.float64)})
    weights.npz_to_caffemodel(tmp_path / "h.npz", tmp_path / "h.caffemodel")
    [(name, (a, b))] = _blobs(tmp_path / "h.caffemodel")
    assert name == "fc" and b.dtype == np.float64
    np.testing.assert_array_equal(a, w)


@pytest.mark.parametrize("keys, message", [({"fc": 1}, "not named <layer>/<blob index>"),
                                           ({"fc/1": 1}, "no array for blob(s) 0")])
def test_bad_npz_names_the_array(tmp_path, keys, message):
    np.savez(tmp_path / "bad.npz", **{k: np.zeros(2, np.float32) for k in keys})
    with pytest.raises(ValueError, match=r"bad\.npz.*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        weights.npz_to_caffemodel(tmp_path / "bad.npz", tmp_path / "x.caffemodel")


def test_caffemodel_hdf5_both_ways(tmp_path):
    h5, back = tmp_path / "w.caffemodel.h5", tmp_path / "back.caffemodel"
    weights.caffemodel_to_hdf5(NET, h5)
    layers = hdf5.read_weights_hdf5(h5)
    assert [n for n, a in layers.items() if a] == [n for n, _ in _blobs(NET)]
    weights.hdf5_to_caffemodel(h5, back)
    _assert_same_blobs(_blobs(back), _blobs(NET))
    model = os.path.join(DATA, "nets", "cifar10_full.prototxt")
    weights.hdf5_to_caffemodel(h5, back, model=model)
    net = caffemodel.read_net_binary(back)
    assert [l.type for l in net.layer if len(l.blobs)][0] == "Convolution"
    _assert_same_blobs(_blobs(back), _blobs(NET))


def test_upgrade_tools_write_caffes_files(tmp_path):
    assert upgrade.upgrade_net_proto_binary(V1, tmp_path / "u.caffemodel")
    assert filecmp.cmp(V1_UP, tmp_path / "u.caffemodel", shallow=False)
    for name in ("v1_net", "v0_net"):
        out = tmp_path / (name + ".prototxt")
        assert upgrade.upgrade_net_proto_text(os.path.join(DATA, "io", name + ".prototxt"), out)
        assert filecmp.cmp(os.path.join(DATA, "io", name + ".upgraded.prototxt"), out,
                           shallow=False)


def test_hwgq_caffemodel_keeps_its_binary_params(tmp_path):
    weights.caffemodel_to_npz(HWGQ, tmp_path / "w.npz")
    net = weights.npz_to_net_param(tmp_path / "w.npz")
    conv2 = [l for l in net.layer if l.name == "conv2"][0]
    assert conv2.type == "BinaryConvolution" and conv2.binary_convolution_param.use_alpha
    ref = np.load(os.path.join(DATA, "hwgq", "deploy", "deploy_lenet_bw.npz"))
    with np.load(tmp_path / "w.npz") as d:
        np.testing.assert_array_equal(d["ip1/0"], ref["param__ip1__0"])


def test_cli_convert_and_upgrade(tmp_path):
    npz, back = str(tmp_path / "w.npz"), str(tmp_path / "b.caffemodel")
    assert cli.main(["convert", V1_UP, npz]) == 0
    assert cli.main(["convert", npz, back]) == 0
    assert filecmp.cmp(V1_UP, back, shallow=False)
    assert cli.main(["upgrade_net_proto_binary", V1, str(tmp_path / "u.caffemodel")]) == 0
    assert filecmp.cmp(V1_UP, tmp_path / "u.caffemodel", shallow=False)
    assert cli.main(["convert", npz, str(tmp_path / "x.txt")]) == 1
