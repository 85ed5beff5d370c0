"""cpu/transform.py's one-pass Data-layer transform is bit-equal to the NumPy
reference of DataTransformer.transform_into, for every mean kind, mirror,
crop offset, scale and pixel dtype."""
import numpy as np
import pytest
from google.protobuf import text_format

from pycaffe_lowbit.cpu import jit, transform as cpu_transform
from pycaffe_lowbit.data.transformer import DataTransformer
from pycaffe_lowbit.formats.caffemodel import write_blobproto
from pycaffe_lowbit.proto import caffe_pb2

pytestmark = pytest.mark.skipif(not jit.available(), reason="needs Numba")

SHAPE = (3, 13, 17)


def _transformer(text, tmp_path=None, mean=None):
    param = text_format.Parse(text, caffe_pb2.TransformationParameter())
    if mean is not None:
        path = tmp_path / "mean.binaryproto"
        write_blobproto(mean[None], str(path))
        param.mean_file = str(path)
    return DataTransformer(param, caffe_pb2.TRAIN, np.random.default_rng(0))


def _both(t, image, h_off, w_off, flip, monkeypatch):
    c, h, w = t.output_shape(image.shape)
    fast = np.full((c, h, w), np.nan, np.float32)
    t.transform_into(fast, image, h_off, w_off, flip)
    ref = np.full((c, h, w), np.nan, np.float32)
    with monkeypatch.context() as m:
        m.setenv("LOWBIT_NUMBA", "0")
        t.transform_into(ref, image, h_off, w_off, flip)
    return fast, ref


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("text", [
    "crop_size: 9 mean_value: 104.5 mean_value: 117 mean_value: 123.25 scale: 0.017",
    "crop_size: 9 mean_value: 100",
    "crop_size: 11 scale: 0.00390625",
    "",
])
def test_compiled_transform_is_bit_equal_to_the_reference(monkeypatch, dtype, flip, text):
    rng = np.random.default_rng(7)
    image = (rng.integers(0, 256, SHAPE).astype(dtype) if dtype == np.uint8
             else rng.standard_normal(SHAPE).astype(dtype) * 50)
    t = _transformer(text)
    h_off, w_off = (2, 5) if "crop_size" in text else (0, 0)
    fast, ref = _both(t, image, h_off, w_off, flip, monkeypatch)
    assert not np.isnan(fast).any()
    np.testing.assert_array_equal(fast, ref)


@pytest.mark.parametrize("flip", [False, True])
def test_mean_file_is_read_at_the_source_pixel(monkeypatch, tmp_path, flip):
    rng = np.random.default_rng(3)
    mean = rng.random(SHAPE).astype(np.float32) * 255
    image = rng.integers(0, 256, SHAPE).astype(np.uint8)
    t = _transformer("crop_size: 7 scale: 0.5", tmp_path, mean)
    fast, ref = _both(t, image, 4, 3, flip, monkeypatch)
    np.testing.assert_array_equal(fast, ref)
    crop = (image[:, 4:11, 3:10].astype(np.float32) - mean[:, 4:11, 3:10]) * np.float32(0.5)
    np.testing.assert_array_equal(fast, crop[:, :, ::-1] if flip else crop)


def test_channel_mean_broadcasts_one_value_and_zeros_for_none():
    np.testing.assert_array_equal(cpu_transform.channel_mean([5], 3), [5, 5, 5])
    np.testing.assert_array_equal(cpu_transform.channel_mean([], 2), [0, 0])
    assert cpu_transform.channel_mean([1, 2, 3], 3).dtype == np.float32
