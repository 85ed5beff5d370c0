"""DataTransformer: Caffe's crop / mirror / mean / scale against a per-pixel
reference of Caffe's formula, its random draws, and its errors."""
import os

import cv2
import numpy as np
import pytest

from pycaffe_lowbit.data import DataError, array_to_datum
from pycaffe_lowbit.data.datum import encoded_datum
from pycaffe_lowbit.data.transformer import DataTransformer
from pycaffe_lowbit.formats.caffemodel import write_blobproto
from pycaffe_lowbit.proto import caffe_pb2
from support import paths

IO = os.path.join(paths.GOLDEN, "io")
TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def make(phase=TEST, seed=0, **fields):
    mean_value = fields.pop("mean_value", [])
    param = caffe_pb2.TransformationParameter(**fields)
    param.mean_value.extend(mean_value)
    return DataTransformer(param, phase, np.random.default_rng(seed))


def reference(image, mean, scale, crop, h_off, w_off, mirror):
    """Caffe's DataTransformer::Transform, one pixel at a time, in float32."""
    c, height, width = image.shape
    h, w = (crop, crop) if crop else (height, width)
    out = np.zeros((c, h, w), np.float32)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                x = np.float32(image[ch, h_off + i, w_off + j])
                m = mean[ch, h_off + i, w_off + j] if mean.ndim == 3 else \
                    mean[ch if mean.size > 1 else 0]
                out[ch, i, w - 1 - j if mirror else j] = (x - m) * np.float32(scale)
    return out


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (3, 7, 9), dtype=np.uint8) for _ in range(4)]


def test_mean_file_crop_mirror_scale_match_caffes_formula(tmp_path, images):
    mean = np.random.default_rng(1).uniform(0, 255, (3, 7, 9)).astype(np.float32)
    write_blobproto(mean[None], str(tmp_path / "mean.binaryproto"))
    t = make(TRAIN, crop_size=5, mirror=True, scale=0.017,
             mean_file=str(tmp_path / "mean.binaryproto"))
    draws = (np.array([0, 2, 1, 2]), np.array([4, 0, 3, 1]), np.array([1, 0, 1, 0]))
    out = t.transform(images, draws)
    assert out.dtype == np.float32 and out.shape == (4, 3, 5, 5)
    for k, image in enumerate(images):
        ref = reference(image, mean, 0.017, 5, draws[0][k], draws[1][k], draws[2][k])
        assert np.array_equal(out[k], ref)


@pytest.mark.parametrize("mean_value", [[], [104.0], [104.0, 117.0, 123.5]])
def test_mean_values_and_test_phase_centre_crop(images, mean_value):
    t = make(TEST, crop_size=4, scale=0.5, mean_value=mean_value)
    out = t.transform(images)
    mean = np.asarray(mean_value or [0.0], np.float32)
    for k, image in enumerate(images):
        # centre: ((7 - 4) // 2, (9 - 4) // 2) = (1, 2)
        assert np.array_equal(out[k], reference(image, mean, 0.5, 4, 1, 2, False))


def test_no_crop_mirror_only(images):
    t = make(TRAIN, mirror=True)
    out = t.transform(images, (np.zeros(4, int), np.zeros(4, int), np.array([1, 1, 0, 0])))
    assert np.array_equal(out[0], images[0][:, :, ::-1].astype(np.float32))
    assert np.array_equal(out[2], images[2].astype(np.float32))


def test_images_of_different_sizes_with_a_crop():
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (1, h, w), dtype=np.uint8) for h, w in [(6, 6), (8, 7)]]
    t = make(TEST, crop_size=5)
    out = t.transform(images)
    assert np.array_equal(out[0], images[0][:, 0:5, 0:5])
    assert np.array_equal(out[1], images[1][:, 1:6, 1:6])


def test_float_data_datum():
    values = np.linspace(-2, 2, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    t = make(TEST, scale=2.0, mean_value=[0.5])
    image = t.decode(array_to_datum(values))
    assert np.array_equal(t.transform([image])[0], (values - np.float32(0.5)) * 2)


def test_draws_follow_the_phase():
    t = make(TEST, crop_size=3, mirror=False)
    h, w, flip = t.draw([7, 9], [9, 3])
    assert list(h) == [2, 3] and list(w) == [3, 0] and not flip.any()
    t = make(TRAIN, crop_size=3, mirror=True, seed=11)
    h, w, flip = t.draw([5] * 1000, [4] * 1000)
    assert set(h) == {0, 1, 2} and set(w) == {0, 1} and set(flip) == {0, 1}
    again = make(TRAIN, crop_size=3, mirror=True, seed=11).draw([5] * 1000, [4] * 1000)
    assert all(np.array_equal(a, b) for a, b in zip((h, w, flip), again))


def test_random_crops_and_flips_are_uniform():
    t = make(TRAIN, crop_size=4, mirror=True, seed=2)
    n = 20000
    h, w, flip = t.draw([8] * n, [6] * n)
    for values, k in ((h, 5), (w, 3), (flip, 2)):
        counts = np.bincount(values, minlength=k)
        assert len(counts) == k
        # each bin within 5 % of n / k (about 6 standard deviations)
        assert np.all(np.abs(counts - n / k) < 0.05 * n / k), counts


def test_encoded_force_color_and_gray():
    png = open(os.path.join(IO, "images", "flower_gray_24x16.png"), "rb").read()
    datum = encoded_datum(png, label=4)
    assert make().decode(datum).shape == (1, 16, 24)
    color = make(force_color=True).decode(datum)
    assert color.shape == (3, 16, 24) and np.array_equal(color[0], color[2])
    png = open(os.path.join(IO, "images", "china_20x20.png"), "rb").read()
    gray = make(force_gray=True).decode(encoded_datum(png))
    expected = cv2.imread(os.path.join(IO, "images", "china_20x20.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(gray[0], expected)


def test_errors(tmp_path, images):
    with pytest.raises(DataError, match="cannot specify mean_file and mean_value"):
        make(mean_file="m.binaryproto", mean_value=[1.0])
    with pytest.raises(DataError, match="both force_color and force_gray"):
        make(force_color=True, force_gray=True)
    with pytest.raises(DataError, match=r"mean file 'nowhere.binaryproto' \(resolved against "
                                        r"the working directory: .*\) not found"):
        make(mean_file="nowhere.binaryproto")
    with pytest.raises(DataError, match="specify either 1 mean_value or as many as "
                                        "channels: 2 values for 3 channels"):
        make(mean_value=[1.0, 2.0]).transform(images)
    with pytest.raises(DataError, match="image of 7x9 is smaller than crop_size 8"):
        make(crop_size=8).transform(images)
    write_blobproto(np.zeros((1, 3, 4, 4), np.float32), str(tmp_path / "m.binaryproto"))
    with pytest.raises(DataError, match="the mean file is 3x4x4 .* but the image is 3x7x9"):
        make(mean_file=str(tmp_path / "m.binaryproto")).transform(images)
