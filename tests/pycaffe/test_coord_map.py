"""coord_map: the spatial maps between NetSpec tops and the FCN crop offsets pycaffe computes.

Expected values by hand. A layer maps bottom position x to top position a*x + b:
Convolution/Pooling a = 1/s, b = (p - (k-1)/2)/s; Deconvolution a = s,
b = (k-1)/2 - p; Crop a = 1, b = -offset.
"""
import numpy as np
import pytest

from pycaffe_lowbit.pycaffe.coord_map import (AxisMismatchException, UndefinedMapException,
                                              compose, conv_params, coord_map, coord_map_from_to,
                                              crop, inverse)
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers import layer_type_list
from pycaffe_lowbit.pycaffe.net_spec import L, NetSpec, P
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.pycaffe.pycaffe import Net


def fcn(ks=3, stride=1, pad=0, pool=2, dstride=2, dpad=0, relu=False):
    """data -> conv -> pool -> deconv (kernel 2 * stride), as in an FCN head."""
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 24, 24]))
    n.conv = L.Convolution(n.data, num_output=2, kernel_size=ks, stride=stride, pad=pad)
    bottom = n.conv
    if relu:
        n.relu = L.ReLU(n.conv, in_place=True)
        bottom = n.relu
    n.pool = L.Pooling(bottom, pool=P.Pooling.MAX, kernel_size=pool, stride=pool)
    deconv_ks = [2 * s for s in dstride] if isinstance(dstride, list) else 2 * dstride
    n.deconv = L.Deconvolution(n.pool, num_output=2, kernel_size=deconv_ks,
                               stride=dstride, pad=dpad)
    return n


def test_single_layer_maps():
    x = L.Input()
    ax, a, b = coord_map(L.Convolution(x, kernel_size=5, stride=2, pad=1).fn)
    assert ax == 1 and a == 0.5 and b == (1 - 2) / 2
    ax, a, b = coord_map(L.Deconvolution(x, kernel_size=4, stride=2, pad=1).fn)
    assert ax == 1 and a == 2 and b == 1.5 - 1
    ax, a, b = coord_map(L.Pooling(x, kernel_size=3, stride=2).fn)
    assert a == 0.5 and b == -0.5
    # Dilation widens the kernel to (k - 1) * d + 1 = 5.
    axis, stride, extent, pad = conv_params(L.Convolution(x, kernel_size=3, dilation=2).fn)
    assert (axis, stride.tolist(), extent.tolist(), pad.tolist()) == (1, [1], [5], [0])
    # Parameters inside convolution_param=dict(...) count the same.
    fn = L.Convolution(x, convolution_param=dict(kernel_size=[3], stride=[2], pad=[1])).fn
    assert coord_map(fn)[1:] == (0.5, 0.0)
    assert coord_map(L.ReLU(x).fn) == (None, 1, 0)
    assert coord_map(L.Crop(x, x, axis=2, offset=[3, 4]).fn)[0] == 1
    np.testing.assert_array_equal(coord_map(L.Crop(x, x, offset=3).fn)[2], [-3])


def test_identity_for_2x_pool_2x_deconv():
    # conv k3: x-1; pool k2 s2: (x-1)/2 - 1/4; deconv k4 s2: 2*(...) + 3/2 = x.
    n = fcn()
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    assert ax == 1 and a == 1 and b == 0


def test_shift_for_4x_pool_4x_deconv():
    # conv: x-1; pool k4 s4: (x-1)/4 - 3/8; deconv k8 s4: 4*(...) + 7/2 = x+1.
    n = fcn(pool=4, dstride=4)
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    assert ax == 1 and a == 1 and b == -1
    ax, a, b = coord_map_from_to(n.data, n.deconv)  # the other way round
    assert a == 1 and b == 1


def test_pass_through_layers_change_nothing():
    n = fcn(relu=True)
    assert coord_map_from_to(n.deconv, n.data)[1:] == (1, 0)


@pytest.mark.parametrize("pad, dpad", [(1, 0), (3, 0), (0, 1), (2, 1)])
def test_padding_shifts(pad, dpad):
    # conv pad p adds p to b of data->deconv; deconv pad q subtracts q.
    n = fcn(pad=pad, dpad=dpad)
    _, a, b = coord_map_from_to(n.deconv, n.data)
    assert a == 1 and b == -pad + dpad


def test_rectangular_and_nd_params():
    n = fcn(ks=[3, 5], stride=[1, 1], pad=[0, 10], pool=2, dstride=[2, 2])
    ax, a, b = coord_map_from_to(n.deconv, n.data)
    np.testing.assert_array_equal(a, [1, 1])
    # data -> deconv shifts by p - (k-1)/2 + 1: 0 and 9.
    np.testing.assert_array_equal(b, [0, -9])


def test_two_bottom_conv():
    n = fcn()
    n.aux = L.Input(shape=dict(dim=[1, 1, 12, 12]))
    n.conv_data, n.conv_aux = L.Convolution(n.data, n.aux, ntop=2, num_output=2,
                                            kernel_size=5, stride=2, pad=0)
    for top, bottom in ((n.conv_data, n.data), (n.conv_aux, n.aux)):
        ax, a, b = coord_map_from_to(top, bottom)
        assert ax == 1 and a == 2 and b == 2  # inverse of x/2 - 1


def test_crop_of_crop():
    n = fcn()
    n.crop = L.Crop(n.deconv, n.data, axis=2, offset=3)
    ax, a, b = coord_map_from_to(n.crop, n.data)
    assert ax == 1 and a == 1 and b == 3   # data -> deconv is x, crop is x - 3


def test_crop_helper_makes_pycaffe_crop_layer():
    n = fcn(pool=4, dstride=4, pad=0)
    n.score = crop(n.deconv, n.data)
    lp = n.to_proto().layer[-1]
    expected = parse_net_text(
        'layer { name: "score" type: "Crop" bottom: "deconv" bottom: "data" top: "score" '
        'crop_param { axis: 2 offset: 1 } }', upgrade_net=False).layer[0]
    assert lp == expected
    assert parse_net_text(str(n.to_proto()), upgrade_net=False) == n.to_proto()
    # Conv pad 5: data -> conv is x + 4, -> pool (x + 4)/4 - 3/8, -> deconv x + 6.
    n = fcn(pad=5, pool=4, dstride=4)
    n.score = crop(n.deconv, n.data)
    assert list(n.to_proto().layer[-1].crop_param.offset) == [6]


def test_crop_rectangular_offsets():
    n = fcn(ks=[3, 3], pad=[2, 4], pool=2, dstride=[2, 2])
    n.score = crop(n.deconv, n.data)
    cp = n.to_proto().layer[-1].crop_param
    assert cp.axis == 2 and list(cp.offset) == [2, 4]


@pytest.mark.skipif("Crop" not in layer_type_list(), reason="Crop layer not registered")
def test_fcn_crop_runs_and_aligns():
    n = fcn(pad=5, pool=4, dstride=4)
    n.score = crop(n.deconv, n.data)
    net = Net(parse_net_text(str(n.to_proto())), caffe_pb2.TEST)
    out = net.forward(data=np.random.RandomState(0).rand(1, 1, 24, 24))
    assert net.blobs["deconv"].data.shape == (1, 2, 36, 36)
    assert out["score"].shape == (1, 2, 24, 24)
    np.testing.assert_array_equal(out["score"], net.blobs["deconv"].data[:, :, 6:30, 6:30])


def test_crop_rejects_scale_and_negative_offsets():
    n = fcn(dstride=1)          # pool 2, deconv stride 1: scale 1/2
    with pytest.raises(ValueError, match="scale mismatch"):
        crop(n.deconv, n.data)
    n = fcn(dpad=1)             # deconv output inside the data: offset -1
    with pytest.raises(ValueError, match="negative offset"):
        crop(n.deconv, n.data)
    n = NetSpec()
    n.data = L.Input()
    n.conv = L.Convolution(n.data, kernel_size=2)   # shifts by half a pixel
    with pytest.raises(ValueError, match="noninteger"):
        crop(n.data, n.conv)


def test_unconnected_and_undefined():
    n = fcn()
    n.ip = L.InnerProduct(n.deconv, num_output=10)
    with pytest.raises(UndefinedMapException):
        coord_map(n.ip.fn)
    with pytest.raises(RuntimeError, match="Could not compute map"):
        coord_map_from_to(n.ip, n.data)
    n.other = L.Input()
    with pytest.raises(RuntimeError):
        coord_map_from_to(n.deconv, n.other)
    with pytest.raises(UndefinedMapException):
        coord_map(L.Pooling(n.data, global_pooling=True).fn)
    with pytest.raises(ValueError, match="kernel_h"):
        coord_map(L.Convolution(n.data, kernel_h=3, kernel_w=3).fn)


def test_compose_inverse_and_axis_mismatch():
    m = (1, np.array([0.5]), np.array([-1.0]))
    ax, a, b = compose(m, inverse(m))
    assert ax == 1 and a == 1 and b == 0
    assert compose((None, 1, 0), m)[0] == 1 and compose(m, (None, 1, 0))[0] == 1
    assert compose((1, 2, 3), (1, 5, 7)) == (1, 10, 17)   # 2 * (5x + 7) + 3
    with pytest.raises(AxisMismatchException):
        compose((1, 1, 0), (2, 1, 0))
    n = NetSpec()
    n.data = L.Input()
    n.a = L.Convolution(n.data, kernel_size=3, axis=1)
    n.b = L.Convolution(n.a, kernel_size=3, axis=2)
    with pytest.raises(AxisMismatchException):
        coord_map_from_to(n.b, n.data)


def test_crop_through_pass_through_only():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 4, 4]))
    n.relu = L.ReLU(n.data)
    n.crop = crop(n.relu, n.data)
    cp = n.to_proto().layer[-1].crop_param
    assert cp.axis == 2 and list(cp.offset) == [0]
