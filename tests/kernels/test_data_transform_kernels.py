"""data_transform.cu: the GPU path's transform (uint8 crops in, mirror, mean
and scale on the device), run on the CPU under cuda_host.h, equals the NumPy
transform bit for bit (float32), for every mean kind, mirrored or not, and
through the Data and ImageData layers (their batches unchanged)."""
import cv2
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.data import array_to_datum, open_db
from pycaffe_lowbit.data.transformer import DataTransformer
from pycaffe_lowbit.formats.caffemodel import write_blobproto
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.kernels import data_transform
from pycaffe_lowbit.proto import caffe_pb2
from support.kernel_coverage import every_kernel, launches

RNG = np.random.default_rng(11)
SIZES = [(3, 9, 11), (3, 10, 9), (3, 9, 9), (3, 12, 10), (3, 9, 10)]


def transformer(tmp_path, mean, crop=7, scale=0.125, mirror=True):
    param = caffe_pb2.TransformationParameter(crop_size=crop, mirror=mirror, scale=scale)
    if mean == "file":
        write_blobproto(RNG.uniform(0, 255, (1, 3, 12, 12)).astype(np.float32),
                        str(tmp_path / "mean.binaryproto"))
        param.mean_file = str(tmp_path / "mean.binaryproto")
    elif mean:
        param.mean_value.extend(mean)
    return DataTransformer(param, caffe_pb2.TRAIN, np.random.default_rng(5))


@pytest.mark.parametrize("mean", [None, [101.5], [101.5, 117.25, 123.0], "file"])
@pytest.mark.parametrize("crop", [0, 7])
def test_kernel_equals_the_numpy_transform(tmp_path, mean, crop):
    shapes = [(3, 12, 12)] * 5 if mean == "file" or not crop else SIZES
    images = [RNG.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    t = transformer(tmp_path, mean, crop=crop)
    draws = t.draw([s[1] for s in shapes], [s[2] for s in shapes])
    assert draws[2].any() and not draws[2].all()          # some mirrored, some not
    expected = t.transform(images, draws)
    crops, flip, offsets = t.crops(images, draws)
    assert crops.dtype == np.uint8 and flip.dtype == np.uint8 and offsets.shape == (5, 2)
    with launches() as seen:
        got = data_transform.transform(crops, flip, offsets, t.mean, t.mean_values,
                                       float(t.scale), np.empty(expected.shape, np.float32))
    assert seen == every_kernel("data_transform")
    assert np.array_equal(got, expected)
    # float64 tops: the same formula in double
    with launches():
        wide = data_transform.transform(crops, flip, offsets, t.mean, t.mean_values,
                                        float(t.scale), np.empty(expected.shape))
    np.testing.assert_allclose(wide, expected, rtol=1e-6, atol=1e-4)


def _batches(text, n, emulated):
    caffe.set_random_seed(3)
    out = []
    if emulated:
        with launches() as seen:
            net = caffe.Net(parse_net_text(text), caffe.TRAIN)
            for _ in range(n):
                net.forward()
                out.append(backend.to_numpy(net.blobs["data"].data).copy())
        assert ("data_transform", "lowbit_data_transform") in seen
        assert net.layers[0].reader.crops
        return out
    net = caffe.Net(parse_net_text(text), caffe.TRAIN)
    for _ in range(n):
        net.forward()
        out.append(backend.to_numpy(net.blobs["data"].data).copy())
    return out


def test_data_layer_batches_are_the_same_on_the_kernel_path(tmp_path):
    with open_db(str(tmp_path / "db"), "lmdb", "w") as db:
        for i in range(9):
            db.put("%02d" % i, array_to_datum(RNG.integers(0, 256, (3, 12, 12), np.uint8),
                                              i).SerializeToString())
    write_blobproto(RNG.uniform(0, 255, (1, 3, 12, 12)).astype(np.float32),
                    str(tmp_path / "mean.binaryproto"))
    for transform in ('crop_size: 8 mirror: true scale: 0.5 mean_file: "%s"'
                      % (tmp_path / "mean.binaryproto"),
                      "crop_size: 9 mirror: true mean_value: 104 mean_value: 117 "
                      "mean_value: 123"):
        text = ('layer { name: "d" type: "Data" top: "data" top: "label" transform_param '
                '{ %s } data_param { source: "%s" batch_size: 4 backend: LMDB workers: 2 } }'
                % (transform, tmp_path / "db"))
        host, device = _batches(text, 4, False), _batches(text, 4, True)
        assert all(np.array_equal(a, b) for a, b in zip(host, device))


def test_image_data_batches_are_the_same_on_the_kernel_path(tmp_path):
    lines = []
    for i in range(6):
        cv2.imwrite(str(tmp_path / ("%d.png" % i)),
                    RNG.integers(0, 256, (11 + i % 2, 12, 3), np.uint8))
        lines.append("%s %d" % (tmp_path / ("%d.png" % i), i))
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    text = ('layer { name: "d" type: "ImageData" top: "data" top: "label" transform_param '
            '{ crop_size: 10 mirror: true mean_value: 120 scale: 0.5 } image_data_param { '
            'source: "%s" batch_size: 4 shuffle: true } }' % (tmp_path / "list.txt"))
    host, device = _batches(text, 3, False), _batches(text, 3, True)
    assert all(np.array_equal(a, b) for a, b in zip(host, device))
