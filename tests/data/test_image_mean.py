"""compute_image_mean: Caffe's digits mean reproduced bit for bit, its log,
colour and float records, and errors."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.data import DataError, array_to_datum, open_db
from pycaffe_lowbit.formats.blobproto import array_from_proto
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.data.tools.image_mean import channel_means, compute_image_mean
from pycaffe_lowbit.data.tools.imageset import convert_imageset
from support.tool_cases import IMAGE_LIST, IMAGES, IO, assert_one_line_error, run_cli

DIGITS = os.path.join(IO, "..", "solvers", "digits_train_lmdb")


def read_mean(path):
    proto = caffe_pb2.BlobProto()
    proto.ParseFromString(open(path, "rb").read())
    return proto


def test_cli_reproduces_caffe_binaryproto_and_log(tmp_path):
    out = run_cli(tmp_path, "compute_image_mean", "-backend", "lmdb", DIGITS,
                  tmp_path / "mean.binaryproto")
    assert out.returncode == 0, out.stderr
    golden = os.path.join(IO, "digits_mean.binaryproto")
    assert open(tmp_path / "mean.binaryproto", "rb").read() == open(golden, "rb").read()
    expected = np.load(os.path.join(IO, "digits_mean.npz"))
    for line in str(expected["log"]).splitlines()[1:]:
        message = line.split("] ", 1)[1].replace("digits_mean.binaryproto",
                                                 str(tmp_path / "mean.binaryproto"))
        assert message in out.stderr


def test_float32_accumulation_matches_caffe_not_float64():
    golden = np.load(os.path.join(IO, "digits_mean.npz"))
    mean = compute_image_mean(DIGITS)
    assert mean.dtype == np.float32 and mean.shape == (1, 28, 28)
    assert np.array_equal(mean[None], golden["mean"])
    assert np.allclose(mean, golden["numpy_mean_float64"], rtol=1e-6)


def test_colour_float_and_encoded_records(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 3, 4, 5), dtype=np.uint8)
    with open_db(str(tmp_path / "raw"), "lmdb", "w") as db:
        for i, img in enumerate(images):
            db.put("%03d" % i, array_to_datum(img if i % 2 else img.astype(np.float32))
                   .SerializeToString())
    mean = compute_image_mean(str(tmp_path / "raw"), str(tmp_path / "m.binaryproto"))
    total = np.zeros((3, 4, 5), np.float32)
    for img in images:
        total += img
    assert np.array_equal(mean, total / np.float32(7))
    proto = read_mean(tmp_path / "m.binaryproto")
    assert (proto.num, proto.channels, proto.height, proto.width) == (1, 3, 4, 5)
    assert not proto.HasField("shape")
    assert np.array_equal(array_from_proto(proto)[0], mean)
    assert np.allclose(channel_means(mean), images.mean(axis=(0, 2, 3)), rtol=1e-6)
    gray = compute_image_mean(os.path.join(IO, "images_lmdb_gray_resized"))
    encoded_db = str(tmp_path / "enc")
    convert_imageset(IMAGES, IMAGE_LIST, encoded_db, gray=True, resize_height=12,
                     resize_width=10, encode_type="png")
    assert np.array_equal(compute_image_mean(encoded_db), gray)


def test_errors(tmp_path):
    out = run_cli(tmp_path, "compute_image_mean", os.path.join(IO, "images_lmdb"))
    assert_one_line_error(out, "images_lmdb record '00000002_china_20x20.png' has shape "
                               "3x20x20 but the first record has 3x24x32")
    out = run_cli(tmp_path, "compute_image_mean", "nowhere_lmdb")
    assert_one_line_error(out, "LMDB database not found: nowhere_lmdb")
    open_db(str(tmp_path / "empty"), "lmdb", "w").close()
    with pytest.raises(DataError, match="empty: no records to average"):
        compute_image_mean(str(tmp_path / "empty"))
    with open_db(str(tmp_path / "junk"), "lmdb", "w") as db:
        db.put("a", b"\xff\xff\xff")
    with pytest.raises(DataError, match="junk record 'a' is not a Datum"):
        compute_image_mean(str(tmp_path / "junk"))
