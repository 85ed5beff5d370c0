"""pycaffe's caffe.io: proto/datum conversion, Transformer, load/resize/oversample."""
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit import io as cio
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

GOLDEN_IO = os.path.join(paths.GOLDEN, "io")
IMAGES = os.path.join(GOLDEN_IO, "images")
RNG = np.random.RandomState(0)


def image(name):
    return os.path.join(IMAGES, name)


@pytest.fixture
def cv2():
    return pytest.importorskip("cv2", reason="caffe.io image functions need opencv-python-headless")


def test_names_reachable_from_the_package():
    import pycaffe_lowbit.io
    for name in ("blobproto_to_array", "array_to_blobproto", "arraylist_to_blobprotovector_str",
                 "blobprotovector_str_to_arraylist", "array_to_datum", "datum_to_array",
                 "Transformer", "load_image", "resize_image", "oversample"):
        assert callable(getattr(pycaffe_lowbit.io, name)), name
    with pytest.raises(AttributeError):
        pycaffe_lowbit.io.no_such_name


# -- BlobProto ----------------------------------------------------------------

def test_array_to_blobproto_round_trip_nd_with_diff():
    arr = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7
    diff = -arr
    proto = cio.array_to_blobproto(arr, diff)
    assert list(proto.shape.dim) == [2, 3, 4] and not proto.HasField("num")
    assert len(proto.data) == 24 and len(proto.double_data) == 0  # float data, as pycaffe
    back = cio.blobproto_to_array(proto)
    assert back.shape == (2, 3, 4) and back.dtype == np.float64
    np.testing.assert_allclose(back, arr, rtol=1e-6)
    np.testing.assert_allclose(cio.blobproto_to_array(proto, return_diff=True), diff, rtol=1e-6)


def test_blobproto_to_array_legacy_caffe_mean_file():
    proto = caffe_pb2.BlobProto()
    with open(os.path.join(GOLDEN_IO, "digits_mean.binaryproto"), "rb") as f:
        proto.ParseFromString(f.read())
    mean = cio.blobproto_to_array(proto)
    want = np.load(os.path.join(GOLDEN_IO, "digits_mean.npz"))["mean"]
    assert mean.shape == (1, 1, 28, 28)
    np.testing.assert_array_equal(mean, want)


def test_blobprotovector_str_round_trip():
    arrays = [RNG.rand(2, 3, 4, 5), RNG.rand(7)]
    s = cio.arraylist_to_blobprotovector_str(arrays)
    assert isinstance(s, bytes)
    back = cio.blobprotovector_str_to_arraylist(s)
    assert [b.shape for b in back] == [(2, 3, 4, 5), (7,)]
    for a, b in zip(arrays, back):
        np.testing.assert_allclose(b, a, rtol=1e-6)


# -- Datum --------------------------------------------------------------------

def test_datum_round_trip_uint8_and_float():
    u8 = RNG.randint(0, 256, (3, 4, 5)).astype(np.uint8)
    d = cio.array_to_datum(u8, label=7)
    assert (d.channels, d.height, d.width, d.label) == (3, 4, 5, 7)
    assert d.data == u8.tobytes() and len(d.float_data) == 0
    back = cio.datum_to_array(d)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, u8)

    f = RNG.rand(2, 3, 4).astype(np.float32)
    d = cio.array_to_datum(f)
    assert not d.HasField("label") and len(d.data) == 0 and len(d.float_data) == 24
    back = cio.datum_to_array(d)
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, f, rtol=1e-7)


def test_array_to_datum_needs_3d():
    with pytest.raises(ValueError, match="Incorrect array shape"):
        cio.array_to_datum(np.zeros((2, 2)))


def test_datum_to_array_decodes_encoded_datum(cv2):
    bgr = cv2.imread(image("china_20x20.png"), cv2.IMREAD_COLOR)
    d = caffe_pb2.Datum(encoded=True, data=cv2.imencode(".png", bgr)[1].tobytes())
    np.testing.assert_array_equal(cio.datum_to_array(d), bgr.transpose(2, 0, 1))


# -- Transformer --------------------------------------------------------------

def _caffenet_like(shape=(1, 3, 6, 8)):
    t = cio.Transformer({"data": shape})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255.0)
    t.set_mean("data", np.array([104.0, 117.0, 123.0]))
    t.set_input_scale("data", 0.5)
    return t


def test_transformer_preprocess_order_and_deprocess_inverse():
    t = _caffenet_like()
    img = RNG.rand(6, 8, 3).astype(np.float32)
    keep = img.copy()
    out = t.preprocess("data", img)
    np.testing.assert_array_equal(img, keep)  # the caller's array is untouched
    assert out.shape == (3, 6, 8) and out.dtype == np.float32
    want = (img.transpose(2, 0, 1)[[2, 1, 0]] * 255
            - np.array([104, 117, 123])[:, None, None]) * 0.5
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(t.deprocess("data", out), img, atol=1e-5)


def test_transformer_preprocess_resizes_to_blob_dims(cv2):
    t = cio.Transformer({"data": (1, 3, 12, 16)})
    t.set_transpose("data", (2, 0, 1))
    out = t.preprocess("data", cio.load_image(image("china_32x24.png")))
    assert out.shape == (3, 12, 16)


def test_transformer_elementwise_mean_and_shape_errors():
    t = cio.Transformer({"data": (1, 3, 4, 5)})
    t.set_transpose("data", (2, 0, 1))
    mean = RNG.rand(3, 4, 5)
    t.set_mean("data", mean)
    img = RNG.rand(4, 5, 3)
    np.testing.assert_allclose(t.preprocess("data", img),
                               img.transpose(2, 0, 1) - mean, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Mean channels incompatible with input."):
        t.set_mean("data", np.zeros(4))
    with pytest.raises(ValueError, match="Mean shape incompatible with input shape."):
        t.set_mean("data", np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match="Mean shape invalid"):
        t.set_mean("data", np.zeros((1, 3, 4, 5)))
    g = cio.Transformer({"gray": (1, 1, 4, 5)})
    g.set_mean("gray", np.zeros((4, 5)))  # H x W is one channel's mean


def test_transformer_argument_errors():
    t = cio.Transformer({"data": (1, 3, 4, 5)})
    with pytest.raises(Exception, match="is not one of the net inputs"):
        t.set_raw_scale("nope", 1.0)
    with pytest.raises(Exception, match="Transpose order needs"):
        t.set_transpose("data", (1, 0))
    with pytest.raises(Exception, match="Channel swap needs"):
        t.set_channel_swap("data", (1, 0))


# -- images -------------------------------------------------------------------

def test_load_image_rgb_order_and_range(cv2):
    img = cio.load_image(image("flower_32x24.png"))
    bgr = cv2.imread(image("flower_32x24.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (24, 32, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    np.testing.assert_allclose(img, bgr[:, :, ::-1] / 255.0, atol=1e-7)
    assert not np.allclose(img[:, :, 0], img[:, :, 2])  # R and B really differ


def test_load_image_grayscale_handling(cv2):
    path = image("flower_gray_24x16.png")
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    gray = cio.load_image(path, color=False)
    assert gray.shape == (16, 24, 1)
    np.testing.assert_allclose(gray[:, :, 0], raw / 255.0, atol=1e-7)
    color = cio.load_image(path)
    assert color.shape == (16, 24, 3)
    for c in range(3):
        np.testing.assert_array_equal(color[:, :, c], gray[:, :, 0])
    # a colour file read as intensity: skimage's rgb2gray weights
    rgb = cio.load_image(image("china_20x20.png"))
    lum = cio.load_image(image("china_20x20.png"), color=False)
    assert lum.shape == (20, 20, 1)
    np.testing.assert_allclose(lum[:, :, 0], rgb @ np.array([0.2125, 0.7154, 0.0721]),
                               atol=1e-6)


def test_load_image_missing_file_is_a_clear_error(cv2, tmp_path):
    with pytest.raises(IOError, match="nope.png"):
        cio.load_image(str(tmp_path / "nope.png"))


def test_resize_image_shapes_values_and_constant(cv2):
    im = RNG.rand(6, 8, 3).astype(np.float32) * 300 - 20  # outside [0, 1]
    out = cio.resize_image(im, (12, 16))
    assert out.shape == (12, 16, 3) and out.dtype == np.float32
    assert im.min() - 1e-3 <= out.min() and out.max() <= im.max() + 1e-3
    # same size: identity; a 2x nearest upsampling repeats pixels
    np.testing.assert_allclose(cio.resize_image(im, (6, 8)), im, rtol=1e-6)
    near = cio.resize_image(im, (12, 16), interp_order=0)
    np.testing.assert_array_equal(near, im.repeat(2, 0).repeat(2, 1))
    cubic = cio.resize_image(im, (13, 5), interp_order=3)
    assert cubic.shape == (13, 5, 3) and im.min() <= cubic.min() and cubic.max() <= im.max()
    assert cio.resize_image(im[:, :, :1], (3, 4)).shape == (3, 4, 1)
    many = RNG.rand(4, 4, 600).astype(np.float32)  # over OpenCV's channel limit
    out = cio.resize_image(many, (2, 2))
    assert out.shape == (2, 2, 600)
    np.testing.assert_allclose(out[:, :, 599], cio.resize_image(many[:, :, 599:], (2, 2))[:, :, 0],
                               rtol=1e-5)
    const = cio.resize_image(np.full((4, 4, 3), 0.25), (2, 3))
    assert const.shape == (2, 3, 3) and const.dtype == np.float32 and np.all(const == 0.25)


def test_oversample_crop_positions_and_mirrors():
    h, w, ch, cw = 7, 9, 4, 5
    ims = RNG.rand(2, h, w, 3).astype(np.float32)
    crops = cio.oversample(list(ims), (ch, cw))
    assert crops.shape == (20, ch, cw, 3) and crops.dtype == np.float32
    ci, cj = int(h / 2.0 - ch / 2.0), int(w / 2.0 - cw / 2.0)
    starts = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), (ci, cj)]
    for n, im in enumerate(ims):
        for k, (i, j) in enumerate(starts):
            crop = im[i:i + ch, j:j + cw]
            np.testing.assert_array_equal(crops[10 * n + k], crop)
            np.testing.assert_array_equal(crops[10 * n + 5 + k], crop[:, ::-1])


def test_caffe_io_reachable_from_top_level_package():
    # `caffe.io.<name>` needs `from . import io` in pycaffe_lowbit/__init__.py (lead)
    import pycaffe_lowbit.io  # noqa: F401
    assert caffe.io.Transformer is cio.Transformer
