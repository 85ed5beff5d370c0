"""A blob too large for memory is refused with its shape and the bytes it would
need (a MemoryError, as pycaffe's std::bad_alloc), and the net names the layer
and the top or param, instead of a MemoryError from deep inside NumPy."""
import types

import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core.blob import Blob, BlobTooLargeError, human_bytes
from pycaffe_lowbit.core.errors import LayerMemoryError
from pycaffe_lowbit.formats.text import parse_net_text

INPUT = 'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3000 } } }\n'


def test_a_blob_larger_than_memory_is_refused_before_allocating():
    with pytest.raises(BlobTooLargeError) as info:
        Blob((10 ** 7, 10 ** 7))
    exc = info.value
    assert isinstance(exc, MemoryError)
    assert exc.shape == (10 ** 7, 10 ** 7) and exc.nbytes == 4 * 10 ** 14
    assert str(exc).startswith("shape 10000000 10000000 (100000000000000 values) would need "
                               "400.0 TB as float32: this machine has ")
    blob = Blob((2, 3))
    with pytest.raises(BlobTooLargeError) as info:
        blob.reshape(10 ** 8, 10 ** 8)
    assert info.value.blob is blob and blob.shape == (2, 3)     # unchanged


def test_an_allocation_failure_becomes_the_same_error():
    """Below the machine's memory, the allocator's own MemoryError is mapped."""
    def zeros(shape, dtype):
        raise MemoryError("Unable to allocate 3.00 GiB")
    fake = types.SimpleNamespace(zeros=zeros)
    with pytest.raises(BlobTooLargeError, match=r"shape 1000 1000 \(1000000 values\) would "
                                                r"need 4.0 MB as float32: MemoryError: "
                                                r"Unable to allocate"):
        Blob((1000, 1000), xp=fake)


def test_the_net_names_the_layer_and_the_top():
    net = INPUT + ('layer { name: "tile" type: "Tile" bottom: "x" top: "t" '
                   'tile_param { axis: 1 tiles: 2000000000 } }')
    with pytest.raises(MemoryError) as info:
        caffe.Net(parse_net_text(net), caffe.TEST)
    assert isinstance(info.value, LayerMemoryError)
    assert str(info.value).startswith(
        "layer 'tile' (type Tile): top 't': shape 2 6000000000000 (12000000000000 values) "
        "would need 48.0 TB as float32: this machine has ")


def test_the_net_names_the_layer_and_the_param():
    net = INPUT + ('layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip" '
                   'inner_product_param { num_output: 2000000000 } }')
    with pytest.raises(LayerMemoryError, match=r"^layer 'ip' \(type InnerProduct\): param 0 "
                                               r"\(weight\): shape 2000000000 3000 "):
        caffe.Net(parse_net_text(net), caffe.TEST)


@pytest.mark.parametrize("n, text", [(0, "0 bytes"), (999, "999 bytes"), (1500, "1.5 KB"),
                                     (3.2e12, "3.2 TB"), (5e18, "5000.0 PB")])
def test_human_bytes(n, text):
    assert human_bytes(n) == text
