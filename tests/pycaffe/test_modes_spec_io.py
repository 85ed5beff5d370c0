"""NetSpec, caffe.io and the registry queries in CPU mode and in GPU mode on
the CuPy double (``pycaffe_mode``): a NetSpec net written with ``to_proto``
builds and runs; arrays, including a GPU-mode net's params, survive the
BlobProto, BlobProtoVector and Datum round trips; ``layer_type_list`` names
the standard layers; ``has_nccl``/``NCCL.new_uid`` answer with the right types."""
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit import layers as L
from pycaffe_lowbit import params as P


def small_classifier(batch, named=True):
    """data (batch, 1, 12, 12), label -> conv 3x3 (4) -> max pool 2 -> ReLU in
    place -> fc (5) -> softmax loss. ``named``: tops named through NetSpec;
    otherwise anonymous, named by to_proto."""
    data, label = L.DummyData(shape=[dict(dim=[batch, 1, 12, 12]), dict(dim=[batch])],
                              data_filler=[dict(type="uniform"), dict(type="constant")], ntop=2)
    conv = L.Convolution(data, kernel_size=3, num_output=4, weight_filler=dict(type="xavier"))
    pool = L.Pooling(conv, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    relu = L.ReLU(pool, in_place=True)
    fc = L.InnerProduct(relu, num_output=5, weight_filler=dict(type="xavier"))
    loss = L.SoftmaxWithLoss(fc, label)
    if not named:
        return loss.to_proto()
    spec = caffe.NetSpec()
    spec.data, spec.label, spec.conv, spec.pool = data, label, conv, pool
    spec.relu, spec.fc, spec.loss = relu, fc, loss
    return spec.to_proto()


def build(tmp_path, proto, phase=caffe.TRAIN):
    path = tmp_path / "spec.prototxt"
    path.write_text(str(proto))
    return caffe.Net(str(path), phase)


@pytest.mark.parametrize("named", [True, False], ids=["named", "anonymous"])
def test_a_netspec_net_builds_and_runs(pycaffe_mode, tmp_path, named):
    proto = small_classifier(3, named)
    types = [layer.type for layer in proto.layer]
    assert types == ["DummyData", "Convolution", "Pooling", "ReLU", "InnerProduct",
                     "SoftmaxWithLoss"]
    relu = proto.layer[3]
    assert list(relu.bottom) == list(relu.top)                   # in place
    net = build(tmp_path, proto)
    assert len(net.layers) == 6 and net.outputs == [proto.layer[-1].top[0]]
    conv_top = proto.layer[1].top[0]
    assert net.blobs[conv_top].data.shape == (3, 4, 10, 10)
    assert net.blobs[proto.layer[2].top[0]].data.shape == (3, 4, 5, 5)
    loss = float(net.forward()[net.outputs[0]])
    assert np.isfinite(loss) and loss > 0
    net.backward()
    assert np.abs(net.params[proto.layer[1].name][0].diff).max() > 0
    if named:
        assert list(net.blobs)[:4] == ["data", "label", "conv", "pool"]


def test_layers_without_tops_and_the_input_type_check(pycaffe_mode, tmp_path):
    spec = caffe.NetSpec()
    spec.a, spec.b = L.DummyData(shape=dict(dim=[2, 3]), ntop=2)
    spec.quiet = L.Silence(spec.a, spec.b, ntop=0)
    net = build(tmp_path, spec.to_proto(), caffe.TEST)
    assert net.forward() == {} and net.outputs == []
    both = L.DummyData(ntop=2)
    with pytest.raises(TypeError, match="Silence input 0 is not a Top"):
        L.Silence(both, ntop=0)                      # a tuple of tops, not a top
    L.Silence(*both, ntop=0)


def test_io_blobproto_round_trips(pycaffe_mode, tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    diff = -arr
    proto = caffe.io.array_to_blobproto(arr, diff)
    assert list(proto.shape.dim) == [2, 3, 4]
    np.testing.assert_allclose(caffe.io.blobproto_to_array(proto), arr, rtol=1e-7)
    np.testing.assert_allclose(caffe.io.blobproto_to_array(proto, return_diff=True), diff,
                               rtol=1e-7)

    legacy = caffe.proto.caffe_pb2.BlobProto()       # num/channels/height/width fields
    legacy.num, legacy.channels, legacy.height, legacy.width = 1, 2, 1, 3
    legacy.data.extend(range(6))
    assert caffe.io.blobproto_to_array(legacy).shape == (1, 2, 1, 3)
    shapeless = caffe.proto.caffe_pb2.BlobProto()
    shapeless.data.extend([1.0, 2.0])
    with pytest.raises(ValueError):
        caffe.io.blobproto_to_array(shapeless)

    net = build(tmp_path, small_classifier(2))       # a (GPU-mode) net's params
    params = [p.data for p in net.params["conv"]]
    text = caffe.io.arraylist_to_blobprotovector_str(params)
    back = caffe.io.blobprotovector_str_to_arraylist(text)
    for mine, theirs in zip(params, back):
        np.testing.assert_array_equal(theirs.astype(np.float32), mine)


def test_io_datum_round_trips(pycaffe_mode):
    image = np.random.RandomState(0).randint(0, 256, size=(3, 4, 5)).astype(np.uint8)
    datum = caffe.io.array_to_datum(image, label=7)
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 4, 5, 7)
    back = caffe.io.datum_to_array(datum)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, image)

    values = np.linspace(-1, 1, 12).reshape(1, 3, 4)
    floats = caffe.io.array_to_datum(values)
    np.testing.assert_allclose(caffe.io.datum_to_array(floats), values, rtol=1e-6)
    assert not floats.HasField("label")
    assert len(floats.SerializeToString()) < len(
        caffe.io.array_to_datum(values, label=1).SerializeToString())
    with pytest.raises(ValueError):
        caffe.io.array_to_datum(np.zeros((4, 5)))


def test_layer_type_list_and_nccl(pycaffe_mode):
    types = caffe.layer_type_list()
    for name in ("Data", "Convolution", "InnerProduct", "Pooling", "SoftmaxWithLoss",
                 "Python", "MemoryData", "Input"):
        assert name in types
    assert isinstance(caffe.has_nccl(), bool)
    if caffe.has_nccl():
        assert isinstance(caffe.NCCL.new_uid(), bytes)
