"""io.caffemodel and the BlobProto fast paths of io.blobproto."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.formats import blobproto, caffemodel, wire
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

GOLDEN_IO = os.path.join(paths.GOLDEN, "io")


def golden(name):
    return os.path.join(GOLDEN_IO, name)


# -- .caffemodel ---------------------------------------------------------------------

def test_v1_caffemodel_upgrades_to_caffes_binary_exactly():
    ours = caffemodel.read_net_binary(golden("v1_net.caffemodel"))
    theirs = caffemodel.read_net_binary(golden("v1_net.upgraded.caffemodel"), upgrade_net=False)
    assert ours == theirs
    with open(golden("v1_net.upgraded.caffemodel"), "rb") as f:
        assert ours.SerializeToString() == f.read()


def test_v1_caffemodel_blobs_hold_the_golden_params():
    net = caffemodel.read_net_binary(golden("v1_net.caffemodel"))
    ref = np.load(golden("v1_net.npz"))
    layers = {l.name: l for l in net.layer}
    for name in ("conv1", "ip1"):
        for i in range(2):
            blob = layers[name].blobs[i]
            values = blobproto.blob_array(blob)
            assert values.shape == blobproto.proto_shape(blob)  # legacy 4-D
            assert blobproto.shape_matches(ref["param__%s__%d" % (name, i)].shape, blob)
            np.testing.assert_array_equal(values.ravel(),
                                          ref["param__%s__%d" % (name, i)].ravel())


def _net_with(arrays):
    net = caffe_pb2.NetParameter(name="n")
    for name, values in arrays.items():
        layer = net.layer.add(name=name, type="InnerProduct")
        for a in values:
            blobproto.array_to_proto(a, proto=layer.blobs.add())
    return net


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"ip": [rng.standard_normal((64, 100), dtype=np.float32),
                     rng.standard_normal(64, dtype=np.float32)]}
    path = tmp_path / "m.caffemodel"
    caffemodel.write_net_binary(_net_with(arrays), path)
    back = caffemodel.read_net_binary(path)
    assert back == _net_with(arrays)
    for a, blob in zip(arrays["ip"], back.layer[0].blobs):
        np.testing.assert_array_equal(blobproto.blob_array(blob), a)
    assert [p.name for p in tmp_path.iterdir()] == ["m.caffemodel"]


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.caffemodel"
    caffemodel.write_net_binary(caffe_pb2.NetParameter(name="old"), path)

    def crash(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        caffemodel.write_net_binary(caffe_pb2.NetParameter(name="new"), path)
    monkeypatch.undo()
    assert caffemodel.read_net_binary(path).name == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.caffemodel"]


@pytest.mark.parametrize("content, hint", [
    (None, "no layers"),                                        # a .binaryproto
    (b'name: "LeNet"\nlayer {\n  name: "x"\n}\n', "looks like text"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "HDF5"),
    (b"\xff\xff\xff\xff\xff", "not a binary NetParameter"),
])
def test_not_a_netparameter_names_the_file(tmp_path, content, hint):
    path = tmp_path / "weights.caffemodel"
    if content is None:
        with open(golden("digits_mean.binaryproto"), "rb") as f:
            content = f.read()
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        caffemodel.read_net_binary(path)
    assert str(info.value).startswith("%s: not a binary NetParameter" % path)
    assert hint in str(info.value)


def test_truncated_caffemodel(tmp_path):
    with open(golden("v1_net.caffemodel"), "rb") as f:
        data = f.read()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="cut.caffemodel: not a binary NetParameter"):
        caffemodel.read_net_binary(path)


def test_missing_caffemodel(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.caffemodel"):
        caffemodel.read_net_binary(tmp_path / "nope.caffemodel")


# -- the 147/148 clash ---------------------------------------------------------------

def _varint(v):
    return wire.encode_varint(v)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _upstream_layer(name, ltype, number, param):
    """A LayerParameter as upstream Caffe writes it, ``param`` at field ``number``."""
    head = caffe_pb2.LayerParameter(name=name, type=ltype).SerializeToString()
    return head + _field(number, param.SerializePartialToString())


def test_clip_and_swish_at_upstream_numbers_are_repaired(tmp_path):
    layers = [
        _upstream_layer("clip", "Clip", 148, caffe_pb2.ClipParameter(min=-1, max=2.5)),
        _upstream_layer("swish", "Swish", 147, caffe_pb2.SwishParameter(beta=0.5)),
        _upstream_layer("swish1", "Swish", 147, caffe_pb2.SwishParameter()),
        _upstream_layer("bip", "BinaryInnerProduct", 148,
                        caffe_pb2.BinaryInnerProductParameter(use_alpha=True)),
    ]
    path = tmp_path / "up.caffemodel"
    path.write_bytes(b"".join(_field(100, l) for l in layers))
    net = caffemodel.read_net_binary(path)
    clip, swish, swish1, bip = net.layer
    assert (clip.clip_param.min, clip.clip_param.max) == (-1, 2.5)
    assert not clip.HasField("binary_inner_product_param")
    assert swish.swish_param.beta == 0.5 and not swish.HasField("binary_convolution_param")
    assert swish1.HasField("swish_param") and swish1.swish_param.beta == 1
    assert bip.binary_inner_product_param.use_alpha          # HWGQ's meaning stays
    assert not bip.HasField("clip_param")


def test_clip_without_its_required_fields(tmp_path):
    clip = caffe_pb2.ClipParameter()
    clip.min = 0  # no max
    layer = _upstream_layer("c", "Clip", 148, clip)
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(_field(100, layer))
    with pytest.raises(ValueError, match=r"bad.caffemodel: layer 'c' \(Clip\): its clip_param "
                                         r"\(field 148\) lacks max"):
        caffemodel.read_net_binary(path)


# -- .binaryproto --------------------------------------------------------------------

def test_read_blobproto_golden_mean():
    ref = np.load(golden("digits_mean.npz"))
    mean = caffemodel.read_blobproto(golden("digits_mean.binaryproto"))
    assert mean.dtype == np.float32 and mean.shape == tuple(ref["blob_dims"])
    np.testing.assert_array_equal(mean, ref["mean"])


def test_write_blobproto_is_byte_identical_to_compute_image_mean(tmp_path):
    ref = np.load(golden("digits_mean.npz"))
    path = tmp_path / "mean.binaryproto"
    caffemodel.write_blobproto(ref["mean"][0], path)  # (1, 28, 28) pads to 1x1x28x28
    with open(golden("digits_mean.binaryproto"), "rb") as f:
        assert path.read_bytes() == f.read()


def test_write_blobproto_nd_and_double(tmp_path):
    path = tmp_path / "b.binaryproto"
    a = np.arange(2 * 3 * 4 * 5 * 6, dtype=np.float64).reshape(2, 3, 4, 5, 6)
    caffemodel.write_blobproto(a, path, legacy=False)
    back = caffemodel.read_blobproto(path)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, a)
    with pytest.raises(ValueError, match="at most 4 axes"):
        caffemodel.write_blobproto(a, path)


def test_blobproto_count_mismatch_names_the_file(tmp_path):
    path = tmp_path / "b.binaryproto"
    caffemodel.write_binary_proto(caffe_pb2.BlobProto(num=1, channels=1, height=2, width=2,
                                                      data=[1, 2, 3]), path)
    with pytest.raises(ValueError, match="b.binaryproto: BlobProto has 3 data values but its "
                                         r"shape \(1, 1, 2, 2\) needs 4"):
        caffemodel.read_blobproto(path)


def test_solverstate_round_trip(tmp_path):
    state = caffe_pb2.SolverState(iter=20, learned_net="x.caffemodel", current_step=1)
    blobproto.array_to_proto(np.ones((3, 2), np.float32), proto=state.history.add())
    path = tmp_path / "x.solverstate"
    caffemodel.write_binary_proto(state, path)
    assert caffemodel.read_binary_proto(path, caffe_pb2.SolverState) == state


# -- BlobProto values without Python floats -------------------------------------------

@pytest.mark.parametrize("n", [0, 5, blobproto._FAST_MIN + 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blob_round_trip_data_and_diff(n, dtype):
    rng = np.random.default_rng(n)
    data = rng.standard_normal((n, 2)).astype(dtype)
    diff = rng.standard_normal((n, 2)).astype(dtype)
    proto = blobproto.array_to_proto(data, diff)
    double = dtype == np.float64
    assert len(proto.double_data if double else proto.data) == data.size
    assert proto == _slow_proto(data, diff)
    for got, want in ((blobproto.blob_array(proto), data),
                      (blobproto.blob_array(proto, diff=True), diff)):
        assert got.shape == want.shape
        assert got.dtype == dtype or n == 0  # no values: no sign of doubles
        np.testing.assert_array_equal(got, want)
        assert got.flags.writeable


def _slow_proto(data, diff):
    proto = caffe_pb2.BlobProto()
    proto.shape.dim.extend(data.shape)
    if data.dtype == np.float64:
        proto.double_data.extend(data.ravel().tolist())
        proto.double_diff.extend(diff.ravel().tolist())
    else:
        proto.data.extend(data.ravel().tolist())
        proto.diff.extend(diff.ravel().tolist())
    return proto


@pytest.mark.parametrize("name", ["data", "diff", "double_data", "double_diff"])
def test_wire_path_used_where_containers_lack_array(name):
    """Runtimes whose repeated fields have no __array__ read the packed bytes."""
    rng = np.random.default_rng(1)
    proto = caffe_pb2.BlobProto(num=3, channels=1, height=1, width=7)
    values = {f: rng.standard_normal(21) for f in ("data", "diff", "double_data", "double_diff")}
    for field, v in values.items():
        getattr(proto, field).extend(v.tolist())
    got = blobproto._wire_array(proto, name)
    want = values[name].astype(np.float32 if "double" not in name else np.float64)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype and got.flags.writeable


def test_legacy_dims_and_float16_input():
    proto = blobproto.array_to_proto(np.arange(6, dtype=np.float16).reshape(2, 3),
                                     with_shape=False)
    assert not proto.HasField("shape") and list(proto.data) == [0, 1, 2, 3, 4, 5]


def test_varints_round_trip_and_overlong_ones_are_refused():
    for value in (0, 1, 127, 128, 300, 2 ** 31, 2 ** 63 - 1):
        encoded = wire.encode_varint(value)
        assert wire.read_varint(encoded + b"\x00", 0) == (value, len(encoded))
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        wire.read_varint(b"\xff" * 11 + b"\x01", 0)
    with pytest.raises(IndexError):
        wire.read_varint(b"\x80", 0)
