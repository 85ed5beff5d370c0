"""pycaffe's exception contract, part 2: NetSpec, coord_map, caffe.io and
caffe.draw raise the types BVLC's python/caffe/{net_spec,coord_map,io,draw}.py
(and the pydot they call) raise, with our clearer messages."""
import re
import shutil
import sys

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit import draw
from pycaffe_lowbit.pycaffe.coord_map import (AxisMismatchException, UndefinedMapException,
                                              compose, conv_params, coord_map,
                                              coord_map_from_to, crop)
from pycaffe_lowbit.pycaffe.net_spec import L, NetSpec, P


# -- NetSpec ------------------------------------------------------------------------

def test_non_top_input_reads_as_pycaffe():
    x = L.Input()
    pair = L.Slice(x, ntop=2)
    with pytest.raises(TypeError) as info:
        L.Silence(pair, ntop=0)
    # pycaffe's own test_net_spec matches this message exactly
    assert re.match(r"^Silence input 0 is not a Top \(type is <(type|class) 'tuple'>\)$",
                    str(info.value))
    assert "pass them one by one" in info.value.hint    # ours: the hint, beside the message
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == ["hint: " + info.value.hint]
    with pytest.raises(TypeError, match=r"^InnerProduct input 0 is not a Top \(type is "
                                        r"<class 'str'>\)$"):
        L.InnerProduct("data", num_output=3)


def test_netspec_missing_top_is_a_key_error_and_an_attribute_error():
    n = NetSpec()
    n.x = L.Input()
    with pytest.raises(KeyError, match="^NetSpec has no top named 'y'$"):   # pycaffe: tops[name]
        n.y
    assert not hasattr(n, "y") and getattr(n, "y", None) is None
    with pytest.raises(KeyError):
        n["y"]


def test_field_errors_have_protobuf_types():
    x = L.Input()
    with pytest.raises(AttributeError, match="no field 'no_such_field'"):
        L.ReLU(x, no_such_field=1).to_proto()
    # pycaffe: setattr on a message field -> protobuf's AttributeError
    with pytest.raises(AttributeError, match="weight_filler.*give it a dict"):
        L.Convolution(x, weight_filler="xavier").to_proto()
    with pytest.raises(ValueError, match="MAXX is not a value of PoolMethod"):
        L.Pooling(x, pool="MAXX").to_proto()           # protobuf: unknown enum label
    with pytest.raises(TypeError):
        L.Convolution(x, num_output="many").to_proto()
    with pytest.raises(TypeError, match="ntop"):       # pycaffe: range("2")
        L.Slice(x, ntop="2")
    with pytest.raises(AttributeError):
        P.NoSuchLayer.VALUE
    with pytest.raises(AttributeError):
        P.Pooling.NO_SUCH_METHOD


# -- coord_map ----------------------------------------------------------------------

def fcn(dstride=2, dpad=0):
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 24, 24]))
    n.conv = L.Convolution(n.data, num_output=2, kernel_size=3)
    n.pool = L.Pooling(n.conv, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.deconv = L.Deconvolution(n.pool, num_output=2, kernel_size=2 * dstride,
                               stride=dstride, pad=dpad)
    return n


def test_crop_failures_are_assertion_errors():
    n = fcn(dstride=1)              # pool 2, deconv stride 1: scale 1/2
    with pytest.raises(AssertionError, match="scale mismatch on crop"):
        crop(n.deconv, n.data)
    n = fcn(dpad=1)                 # the deconv output lies inside the data: b > 0
    with pytest.raises(AssertionError, match="cannot crop negative"):
        crop(n.deconv, n.data)
    n = NetSpec()
    n.data = L.Input()
    n.conv = L.Convolution(n.data, kernel_size=2)
    with pytest.raises(AssertionError, match="noninteger"):
        crop(n.data, n.conv)
    with pytest.raises(AssertionError, match="kernel_h"):
        conv_params(L.Convolution(n.data, kernel_h=3, kernel_w=3).fn)
    # ... and ValueErrors, as they were before
    n = fcn(dpad=1)
    with pytest.raises(ValueError, match="cannot crop negative"):
        crop(n.deconv, n.data)


def test_coord_map_lookups_and_graph_errors():
    x = L.Input()
    with pytest.raises(KeyError, match="^coord_map: layer Convolution has no kernel_size$"):
        coord_map(L.Convolution(x, num_output=1).fn)         # pycaffe: params['kernel_size']
    with pytest.raises(UndefinedMapException):
        coord_map(L.InnerProduct(x, num_output=1).fn)
    with pytest.raises(KeyError):                             # pycaffe: no kernel_size either
        coord_map(L.Pooling(x, global_pooling=True).fn)
    with pytest.raises(UndefinedMapException):
        coord_map(L.Pooling(x, global_pooling=True).fn)
    with pytest.raises(AxisMismatchException):
        compose((1, 1, 0), (2, 1, 0))
    n = fcn()
    n.other = L.Input()
    with pytest.raises(RuntimeError, match="Could not compute map between tops"):
        coord_map_from_to(n.deconv, n.other)


# -- caffe.io -----------------------------------------------------------------------

def test_io_errors_have_pycaffe_types(tmp_path):
    with pytest.raises(ValueError, match="Incorrect array shape"):
        caffe.io.array_to_datum(np.zeros((2, 2)))
    t = caffe.io.Transformer({"data": (1, 3, 4, 4)})
    with pytest.raises(Exception, match="is not one of the net inputs"):
        t.set_raw_scale("nope", 255)
    with pytest.raises(Exception, match="Transpose order needs"):
        t.set_transpose("data", (2, 0))
    with pytest.raises(Exception, match="Channel swap needs"):
        t.set_channel_swap("data", (1, 0))
    with pytest.raises(ValueError, match="Mean channels incompatible"):
        t.set_mean("data", np.zeros(2))
    with pytest.raises(ValueError, match="Mean shape invalid"):
        t.set_mean("data", np.zeros((1, 1, 3, 4, 4)))
    with pytest.raises(ValueError, match="Mean shape incompatible"):
        t.set_mean("data", np.zeros((3, 5, 5)))
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError) as info:             # skimage.io.imread's type
        caffe.io.load_image(str(missing))
    assert info.value.filename == str(missing)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="junk.png"):
        caffe.io.load_image(str(tmp_path / "junk.png"))


# -- caffe.draw (a layer with both include and exclude: ValueError, test_draw.py) ----

def _net():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 1, 8, 8]))
    n.ip = L.InnerProduct(n.data, num_output=2)
    return n.to_proto()


def test_draw_without_graphviz_is_pydots_file_not_found(monkeypatch):
    monkeypatch.setattr(draw.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="install graphviz") as info:
        draw.draw_net(_net(), "LR")
    assert isinstance(info.value, RuntimeError)      # as it was before


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_draw_unknown_format_is_pydots_assertion_error(capsys):
    with pytest.raises(AssertionError, match="could not draw format 'xyz'"):
        draw.draw_net(_net(), "LR", ext="xyz")
