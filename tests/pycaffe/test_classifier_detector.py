"""caffe.Classifier and caffe.Detector (pycaffe's image helpers): each
prediction equals the net run by hand on the crops pycaffe's rules make."""
import numpy as np
import pytest

import pycaffe_lowbit as caffe

cv2 = pytest.importorskip("cv2", reason="caffe.io image functions need OpenCV")

DEPLOY = """name: "tiny"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 6 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3
          weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
"""
MEAN = np.array([0.4, 0.5, 0.6], np.float32) * 255


@pytest.fixture
def model(tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(DEPLOY)
    caffe.set_random_seed(3)
    net = caffe.Net(str(deploy), caffe.TEST)
    weights = tmp_path / "w.caffemodel"
    net.save(str(weights))
    return str(deploy), str(weights)


def _by_hand(deploy, weights, crops, mean=MEAN, raw_scale=255.0, swap=(2, 1, 0)):
    net = caffe.Net(deploy, weights, caffe.TEST)
    x = np.stack([((c * raw_scale)[:, :, list(swap)].transpose(2, 0, 1)
                   - mean[:, None, None]) for c in crops]).astype(np.float32)
    net.blobs["data"].reshape(*x.shape)
    net.blobs["data"].data[...] = x
    return net.forward()["prob"].copy()


def _images(n=2, size=(9, 11)):
    return [np.random.default_rng(i).random(size + (3,)).astype(np.float32) for i in range(n)]


def test_classifier_oversample_averages_the_ten_crops(model):
    deploy, weights = model
    clf = caffe.Classifier(deploy, weights, image_dims=(8, 8), mean=MEAN, raw_scale=255,
                           channel_swap=(2, 1, 0))
    images = _images()
    got = clf.predict(images)
    resized = np.stack([caffe.io.resize_image(im, (8, 8)) for im in images])
    want = _by_hand(deploy, weights, caffe.io.oversample(resized, (6, 6)))
    assert got.shape == (2, 5)
    np.testing.assert_allclose(got, want.reshape(2, 10, 5).mean(axis=1), rtol=1e-5, atol=1e-7)


def test_classifier_centre_crop(model):
    deploy, weights = model
    clf = caffe.Classifier(deploy, weights, image_dims=(9, 9), mean=MEAN, raw_scale=255,
                           channel_swap=(2, 1, 0))
    images = _images(3)
    got = clf.predict(images, oversample=False)
    start = int(9 / 2.0 - 3)                        # int(image_dims/2 - crop_dims/2) = 1
    crops = [caffe.io.resize_image(im, (9, 9))[start:start + 6, start:start + 6]
             for im in images]
    np.testing.assert_allclose(got, _by_hand(deploy, weights, crops), rtol=1e-5, atol=1e-7)


def test_classifier_default_image_dims_are_the_input_size(model):
    deploy, weights = model
    clf = caffe.Classifier(deploy, weights)
    assert tuple(clf.image_dims) == (6, 6)
    assert clf.predict(_images(1), oversample=False).shape == (1, 5)
    with pytest.raises(ValueError, match="no input images"):
        clf.predict([])


def _write_image(path, image):
    cv2.imwrite(str(path), (image[:, :, ::-1] * 255).round().astype(np.uint8))
    return caffe.io.load_image(str(path)).astype(np.float32)


def test_detector_windows_are_warped_crops(model, tmp_path):
    deploy, weights = model
    image = _write_image(tmp_path / "a.png", _images(1, (20, 24))[0])
    det = caffe.Detector(deploy, weights, mean=MEAN, raw_scale=255, channel_swap=(2, 1, 0))
    windows = [(0, 0, 10, 12), (5, 6, 20, 24)]
    got = det.detect_windows([(str(tmp_path / "a.png"), windows)])
    assert [d["window"] for d in got] == windows
    assert all(d["filename"] == str(tmp_path / "a.png") for d in got)
    crops = [caffe.io.resize_image(image[w[0]:w[2], w[1]:w[3]], (6, 6)) for w in windows]
    want = _by_hand(deploy, weights, crops)
    np.testing.assert_allclose(np.stack([d["prediction"] for d in got]), want,
                               rtol=1e-5, atol=1e-7)


def test_detector_context_pad_shows_the_mean_outside_the_image(model, tmp_path):
    deploy, weights = model
    image = _write_image(tmp_path / "b.png", _images(1, (12, 12))[0])
    det = caffe.Detector(deploy, weights, mean=MEAN, raw_scale=255, channel_swap=(2, 1, 0),
                         context_pad=1)
    np.testing.assert_allclose(det.crop_mean[0, 0], (MEAN / 255)[[2, 1, 0]], rtol=1e-6)
    crop = det.crop(image, np.array([0, 0, 5, 5]))    # top-left: context above and left is off
    assert crop.shape == (6, 6, 3)
    np.testing.assert_allclose(crop[0, 0], det.crop_mean[0, 0], rtol=1e-6)
    inside = det.crop(image, np.array([3, 3, 8, 8]))  # context all inside the image
    assert not np.allclose(inside[0, 0], det.crop_mean[0, 0])
    out = det.detect_windows([(str(tmp_path / "b.png"), [np.array([0, 0, 5, 5])])])
    assert out[0]["prediction"].shape == (5,)


def test_detector_selective_search_needs_its_module(model):
    det = caffe.Detector(*model)
    with pytest.raises(ImportError, match="selective_search_ijcv_with_python"):
        det.detect_selective_search(["x.jpg"])
