"""net_spec: nets written in Python (NetSpec, L, P) give the NetParameter pycaffe gives."""
import os
import sys

import numpy as np
import pytest

import pycaffe_lowbit
from pycaffe_lowbit.formats.text import format_text, parse_net_text, read_net_param
from pycaffe_lowbit.pycaffe.net_spec import L, NetSpec, P, assign_proto, param_name_dict, to_proto
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.pycaffe.pycaffe import Net
from support import paths

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
MODELS = os.path.join(paths.ROOT, "models")
XAVIER, CONSTANT = dict(type="xavier"), dict(type="constant")
LR = [dict(lr_mult=1), dict(lr_mult=2)]


def layer(text):
    """One LayerParameter from prototxt text."""
    return parse_net_text("layer { %s }" % text, upgrade_net=False).layer[0]


def round_trip(net_param, phase=TRAIN, **kwargs):
    """NetParameter -> str() -> our parser -> Net; the parse must equal the original
    (before Caffe's upgrades, which drop a BatchNorm's param specs)."""
    assert parse_net_text(str(net_param), upgrade_net=False) == net_param
    assert parse_net_text(format_text(net_param), upgrade_net=False) == net_param
    return Net(parse_net_text(str(net_param)), phase, **kwargs)


def lenet(batch=64, ip1=500, deploy=True):
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[batch, 1, 28, 28]))
    if not deploy:
        n.label = L.Input(shape=dict(dim=[batch]))
    n.conv1 = L.Convolution(n.data, param=LR, num_output=20, kernel_size=5, stride=1,
                            weight_filler=XAVIER, bias_filler=CONSTANT)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, param=LR, num_output=50, kernel_size=5, stride=1,
                            weight_filler=XAVIER, bias_filler=CONSTANT)
    n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.ip1 = L.InnerProduct(n.pool2, param=LR, num_output=ip1,
                           weight_filler=XAVIER, bias_filler=CONSTANT)
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, param=LR, num_output=10,
                           weight_filler=XAVIER, bias_filler=CONSTANT)
    if deploy:
        n.prob = L.Softmax(n.ip2)
    else:
        n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    return n


def test_lenet_matches_model_file():
    proto = lenet().to_proto()
    proto.name = "LeNet"
    expected = read_net_param(os.path.join(MODELS, "lenet", "lenet_deploy.prototxt"),
                              upgrade_net=False)
    assert proto == expected, format_text(proto)


def test_lenet_generated_text():
    text = str(lenet().to_proto())
    assert ('layer {\n  name: "relu1"\n  type: "ReLU"\n  bottom: "ip1"\n  top: "ip1"\n}'
            in text)
    assert ('  pooling_param {\n    pool: MAX\n    kernel_size: 2\n    stride: 2\n  }'
            in text)
    proto = lenet().to_proto()
    assert proto.layer[1] == layer(
        'name: "conv1" type: "Convolution" bottom: "data" top: "conv1" '
        'param { lr_mult: 1 } param { lr_mult: 2 } '
        'convolution_param { num_output: 20 kernel_size: 5 stride: 1 '
        'weight_filler { type: "xavier" } bias_filler { type: "constant" } }')
    assert proto.layer[7].bottom == ["ip1"]  # ip2 reads the in-place ReLU's top


def test_lenet_round_trip_forward_backward():
    net = round_trip(lenet(batch=2, ip1=16, deploy=False).to_proto(), TRAIN)
    assert list(net.blobs) == ["data", "label", "conv1", "pool1", "conv2", "pool2",
                               "ip1", "ip2", "loss"]
    assert [p.data.shape for p in net.params["conv2"]] == [(50, 20, 5, 5), (50,)]
    rng = np.random.RandomState(0)
    out = net.forward(data=rng.rand(2, 1, 28, 28), label=np.array([3, 7]))
    assert np.isfinite(out["loss"]) and out["loss"] > 0
    net.backward()
    assert np.abs(net.params["conv1"][0].diff).sum() > 0
    assert np.abs(net.params["ip2"][1].diff).sum() > 0


def residual_block(n, bottom, name, channels):
    """conv-bn-scale-relu-conv-bn-scale + identity, relu (a ResNet basic block)."""
    branch = bottom
    for i in (1, 2):
        conv = "%s_conv%d" % (name, i)
        n[conv] = L.Convolution(branch, num_output=channels, kernel_size=3, pad=1,
                                bias_term=False, weight_filler=dict(type="msra"))
        n["%s_bn%d" % (name, i)] = L.BatchNorm(n[conv], in_place=True,
                                              param=[dict(lr_mult=0)] * 3)
        n["%s_scale%d" % (name, i)] = L.Scale(n[conv], in_place=True, bias_term=True)
        branch = n[conv]
        if i == 1:
            n["%s_relu1" % name] = L.ReLU(branch, in_place=True)
    n[name] = L.Eltwise(bottom, branch, operation=P.Eltwise.SUM)
    n[name + "_relu"] = L.ReLU(n[name], in_place=True)
    return n[name]


def test_resnet_block_round_trip():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 4, 6, 6]))
    n.target = L.Input(shape=dict(dim=[2, 4, 6, 6]))
    top = residual_block(n, n.data, "res1", 4)
    top = residual_block(n, top, "res2", 4)
    n.loss = L.EuclideanLoss(top, n.target)
    proto = n.to_proto()
    by_name = {lp.name: lp for lp in proto.layer}
    assert by_name["res1_bn1"] == layer(
        'name: "res1_bn1" type: "BatchNorm" bottom: "res1_conv1" top: "res1_conv1" '
        'param { lr_mult: 0 } param { lr_mult: 0 } param { lr_mult: 0 }')
    assert by_name["res1"] == layer(
        'name: "res1" type: "Eltwise" bottom: "data" bottom: "res1_conv2" top: "res1" '
        'eltwise_param { operation: SUM }')
    assert list(by_name["res2"].bottom) == ["res1", "res2_conv2"]
    assert by_name["res1_scale2"].scale_param.bias_term
    net = round_trip(proto, TRAIN)
    rng = np.random.RandomState(1)
    out = net.forward(data=rng.randn(2, 4, 6, 6), target=rng.randn(2, 4, 6, 6))
    assert np.isfinite(out["loss"])
    net.backward()
    assert np.abs(net.params["res1_conv1"][0].diff).sum() > 0
    assert np.abs(net.params["res2_scale2"][1].diff).sum() > 0


def test_auto_names_and_top_to_proto():
    data = L.Input(shape=dict(dim=[1, 3]))
    ip = L.InnerProduct(data, num_output=2)
    relu = L.ReLU(ip, in_place=True)
    loss = L.InnerProduct(relu, num_output=1)
    proto = loss.to_proto()
    assert [(lp.name, list(lp.bottom), list(lp.top)) for lp in proto.layer] == [
        ("Input1", [], ["Input1"]),
        ("InnerProduct1", ["Input1"], ["InnerProduct1"]),
        ("ReLU1", ["InnerProduct1"], ["InnerProduct1"]),
        ("InnerProduct2", ["InnerProduct1"], ["InnerProduct2"])]
    assert to_proto(loss) == proto
    # Named and unnamed mixed: only the unnamed ones are counted.
    n = NetSpec()
    n.x = data
    n.out = loss
    names = [lp.name for lp in n.to_proto().layer]
    assert names == ["x", "InnerProduct1", "ReLU1", "out"]


def test_ntop_zero_and_two():
    n = NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[2, 3]), dict(dim=[2])], ntop=2)
    n.silence = L.Silence(n.label, ntop=0)
    sil = L.Silence(n.data, ntop=0)
    assert isinstance(n.data, pycaffe_lowbit.net_spec.Top)
    assert sil.ntop == 0 and sil.tops == ()
    n.also = sil
    proto = n.to_proto()
    assert proto.layer[0] == layer(
        'name: "data" type: "DummyData" top: "data" top: "label" '
        'dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 2 } }')
    assert [(lp.name, list(lp.bottom), list(lp.top)) for lp in proto.layer[1:]] == [
        ("silence", ["label"], []), ("also", ["data"], [])]
    round_trip(proto, TRAIN).forward()
    # An unnamed layer without tops is named after its type.
    assert [lp.name for lp in to_proto(n.data).layer] == ["DummyData1"]


def test_data_layer_with_two_tops_and_layer_fields():
    n = NetSpec()
    n.data, n.label = L.Data(source="train_lmdb", backend=P.Data.LMDB, batch_size=64,
                             ntop=2, transform_param=dict(scale=1. / 256),
                             include=dict(phase=TRAIN))
    n.loss = L.SoftmaxWithLoss(n.data, n.label, loss_weight=2, propagate_down=[1, 0],
                               loss_param=dict(ignore_label=255))
    proto = n.to_proto()
    assert proto.layer[0] == layer(
        'name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN } '
        'transform_param { scale: 0.00390625 } '
        'data_param { source: "train_lmdb" batch_size: 64 backend: LMDB }')
    assert proto.layer[1] == layer(
        'name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" '
        'top: "loss" loss_weight: 2 propagate_down: true propagate_down: false '
        'loss_param { ignore_label: 255 }')
    assert parse_net_text(str(proto)) == proto


def test_include_exclude_param_lists_and_explicit_name():
    n = NetSpec()
    n.x = L.Input(shape=dict(dim=[2, 3]))
    n.ip = L.InnerProduct(n.x, num_output=4, name="fc",
                          param=[dict(name="w", lr_mult=1, decay_mult=1),
                                 dict(lr_mult=2, decay_mult=0)],
                          include=[dict(phase=TRAIN), dict(stage=["a", "b"])])
    n.ip2 = L.InnerProduct(n.x, num_output=4, exclude=dict(phase=TEST, not_stage="c"))
    lp, lp2 = n.to_proto().layer[1:]
    assert lp.name == "fc" and list(lp.top) == ["ip"]
    assert [(p.name, p.lr_mult, p.decay_mult) for p in lp.param] == [
        ("w", 1, 1), ("", 2, 0)]
    assert [i.phase for i in lp.include] == [TRAIN, TRAIN]
    assert not lp.include[1].HasField("phase") and list(lp.include[1].stage) == ["a", "b"]
    assert len(lp2.exclude) == 1 and lp2.exclude[0].phase == TEST
    assert list(lp2.exclude[0].not_stage) == ["c"]
    assert list(round_trip(n.to_proto(), TRAIN).params) == ["fc", "ip2"]
    assert list(round_trip(n.to_proto(), TEST).params) == []


def test_params_enums():
    assert P.Pooling.MAX == caffe_pb2.PoolingParameter.MAX
    assert P.Pooling.AVE == caffe_pb2.PoolingParameter.AVE
    assert P.Eltwise.PROD == caffe_pb2.EltwiseParameter.PROD
    assert P.Data.LMDB == caffe_pb2.DataParameter.LMDB
    assert P.Convolution.CAFFE == caffe_pb2.ConvolutionParameter.CAFFE
    assert P.Deconvolution.CAFFE == caffe_pb2.ConvolutionParameter.CAFFE
    with pytest.raises(AttributeError):
        P.Pooling.NOPE
    with pytest.raises(AttributeError):
        P.NoSuchLayer.MAX
    # Enum fields also take the value's name.
    pool = L.Pooling(L.Input(shape=dict(dim=[1, 1, 4, 4])), pool="AVE", kernel_size=2)
    assert pool.to_proto().layer[1].pooling_param.pool == P.Pooling.AVE
    with pytest.raises(ValueError, match="MAXX is not a value of PoolMethod"):
        L.Pooling(L.Input(), pool="MAXX").to_proto()


def test_param_name_dict():
    names = param_name_dict()
    assert names["Convolution"] == "convolution"
    assert names["InnerProduct"] == "inner_product"
    assert names["ReLU"] == "relu" and names["LRN"] == "lrn" and names["TanH"] == "tanh"
    assert names["HDF5Data"] == "hdf5_data" and names["Python"] == "python"
    assert names["Deconvolution"] == "convolution"
    assert "SoftmaxWithLoss" not in names


def test_deconvolution_and_explicit_param_message():
    x = L.Input(shape=dict(dim=[1, 2, 3, 3]))
    a = L.Deconvolution(x, num_output=2, kernel_size=4, stride=2, bias_term=False)
    b = L.Deconvolution(x, convolution_param=dict(num_output=2, kernel_size=[4],
                                                  stride=2, bias_term=False))
    assert a.to_proto().layer[1] == b.to_proto().layer[1]
    assert a.to_proto().layer[1].convolution_param.kernel_size == [4]
    out = round_trip(a.to_proto(), TEST).forward()
    assert out["Deconvolution1"].shape == (1, 2, 8, 8)


PYLAYER = '''
import pycaffe_lowbit as caffe


class Times(caffe.Layer):
    def setup(self, bottom, top):
        self.k = float(self.param_str)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.k * bottom[0].data

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = self.k * top[0].diff
'''


def test_python_layer(tmp_path, monkeypatch):
    (tmp_path / "lowbit_netspec_pylayer.py").write_text(PYLAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    n = NetSpec()
    n.x = L.Input(shape=dict(dim=[2, 3]))
    n.y = L.Python(n.x, module="lowbit_netspec_pylayer", layer="Times", param_str="3",
                   ntop=1)
    lp = n.to_proto().layer[1]
    assert lp == layer('name: "y" type: "Python" bottom: "x" top: "y" python_param { '
                       'module: "lowbit_netspec_pylayer" layer: "Times" param_str: "3" }')
    try:
        net = round_trip(n.to_proto(), TEST)
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_allclose(net.forward(x=x)["y"], 3 * x)
    finally:
        sys.modules.pop("lowbit_netspec_pylayer", None)


def test_netspec_container_and_update():
    n = NetSpec()
    n.x = L.Input(shape=dict(dim=[1, 2]))
    n["ip"] = L.InnerProduct(n["x"], num_output=3)
    assert n.keys() == ["x", "ip"] and n.vals() == [n.x, n.ip] and "ip" in n
    n.update("ip", dict(num_output=5, bias_term=False))
    lp = n.to_proto().layer[1]
    assert lp.inner_product_param.num_output == 5
    assert lp.inner_product_param.bias_term is False
    del n["ip"]
    assert n.keys() == ["x"]
    with pytest.raises(AttributeError):
        n.missing
    with pytest.raises(KeyError):
        n["missing"]


def test_bad_input():
    with pytest.raises(TypeError, match="InnerProduct input 0 is not a Top"):
        L.InnerProduct("data", num_output=3)
    x = L.Input()
    with pytest.raises(AttributeError, match="no field 'no_such_field'"):
        L.ReLU(x, no_such_field=1).to_proto()
    with pytest.raises(TypeError, match="weight_filler"):
        L.Convolution(x, weight_filler="xavier").to_proto()
    with pytest.raises(ValueError, match="ntop"):
        L.ReLU(x, ntop=-1)


def test_assign_proto_values():
    lp = caffe_pb2.LayerParameter()
    assign_proto(lp, "bottom", "a")                    # lone value to a repeated field
    assign_proto(lp, "top", ("b", "c"))                # tuple as a list
    assign_proto(lp, "loss_weight", np.array([0.5, 1.0]))
    assign_proto(lp, "propagate_down", [])             # empty: nothing set
    assign_proto(lp.convolution_param, "kernel_size", np.int64(3))
    assign_proto(lp, "param", dict(lr_mult=np.float32(0.5)))
    assert list(lp.bottom) == ["a"] and list(lp.top) == ["b", "c"]
    assert list(lp.loss_weight) == [0.5, 1.0] and len(lp.propagate_down) == 0
    assert list(lp.convolution_param.kernel_size) == [3]
    assert lp.param[0].lr_mult == 0.5


def test_layers_object_can_stand_for_the_layer_subpackage(monkeypatch):
    # pycaffe's ``caffe.layers`` is L, but ``pycaffe_lowbit.layers`` is also the
    # layer subpackage: bound there, L still answers for the subpackage's names.
    import pycaffe_lowbit.layers as package
    monkeypatch.setattr(pycaffe_lowbit, "layers", L)
    from pycaffe_lowbit import layers as caffe_layers
    assert caffe_layers is L
    assert pycaffe_lowbit.layers.create_layer is package.create_layer
    assert pycaffe_lowbit.layers.registry is sys.modules["pycaffe_lowbit.layers.registry"]
    assert pycaffe_lowbit.layers.__path__ == package.__path__
    import pycaffe_lowbit.layers.conv as conv
    assert conv is sys.modules["pycaffe_lowbit.layers.conv"]
    top = pycaffe_lowbit.layers.Convolution(L.Input(), kernel_size=1)
    assert top.fn.type_name == "Convolution"
