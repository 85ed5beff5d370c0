"""The embedded digits dataset: 1797 handwritten 8x8 digits (``digits.csv.gz``,
see README.md) as Caffe train/test LMDBs.

    data/digits/digits_train_lmdb    1438 Datums, keys "%08d_%04d" (index, sample)
    data/digits/digits_test_lmdb      359 Datums
    data/digits/mean.binaryproto      the train set's mean, as compute_image_mean gives it

Each Datum is ``channels=1, height=width=16`` uint8 pixels and the label 0..9:
the 8x8 grid's values v in 0..16 become round(v * 255 / 16) and are upscaled
2x bilinearly (``cv2.resize``, INTER_LINEAR), which keeps the strokes smooth
for 3x3 convolutions. The split is stratified and deterministic: of each
class's samples, in file order, every fifth one (the 3rd, 8th, 13th, ...) is a
test sample. Both sets keep the file's order, in which the classes are
interleaved, so a Data layer reading in key order sees every class in each
batch.

The databases are built by ``lowbit-caffe data digits [--out DIR]`` or on
first use: ``ensure_embedded(source)``, called by the Data layer for a
missing source, builds them when the source's last two path components are
``digits/digits_train_lmdb`` or ``digits/digits_test_lmdb``. The build writes
into a temporary folder beside the target and renames, so concurrent first
uses cannot see half a database.
"""
import gzip
import logging
import os
import shutil
import tempfile

import numpy as np

from ..datum import array_to_datum
from ...formats.caffemodel import atomic_write_bytes
from ..tools.image_mean import mean_to_proto
from ..tools.writer import DatumWriter
from ...core.lazy import lazy_module

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")

CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.csv.gz")
DEFAULT_DIR = os.path.join("data", "digits")
TRAIN, TEST, MEAN = "digits_train_lmdb", "digits_test_lmdb", "mean.binaryproto"
SIZE = 16
TEST_EVERY, TEST_OFFSET = 5, 2


def load_digits():
    """(images (1797, 8, 8) float64 in 0..16, labels (1797,) int64)."""
    with gzip.open(CSV, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def to_uint8(images, size=SIZE):
    """0..16 grids -> (N, size, size) uint8: round(v * 255 / 16), resized bilinearly."""
    scaled = np.rint(images * (255.0 / 16.0)).astype(np.float32)
    if size != scaled.shape[-1]:
        scaled = np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
                           for img in scaled])
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def split(labels):
    """Boolean test mask: every TEST_EVERY-th sample of each class (file order),
    starting at its TEST_OFFSET-th."""
    rank = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[members] = np.arange(len(members))
    return rank % TEST_EVERY == TEST_OFFSET


def image_mean(pixels):
    """compute_image_mean's float32 mean of (N, H, W) uint8 images, summed
    one image at a time as Caffe does, as a (1, H, W) array."""
    total = np.zeros(pixels.shape[1:], np.float32)
    for img in pixels:
        total += img
    return (total / np.float32(len(pixels)))[None]


def _write_set(path, images, labels, index):
    with DatumWriter(path, "lmdb", quiet=True) as writer:
        for img, label, sample in zip(images, labels, index):
            writer.put("%08d_%04d" % (writer.count, sample), array_to_datum(img[None], label))
    return writer.count


def build_digits(out_dir=DEFAULT_DIR, size=SIZE):
    """Write the train and test LMDBs and the train mean into ``out_dir`` (parts
    already there are kept); returns their three paths."""
    targets = [os.path.join(out_dir, name) for name in (TRAIN, TEST, MEAN)]
    if all(os.path.exists(t) for t in targets):
        log.info("The digits dataset is already in %s", out_dir)
        return targets
    images, labels = load_digits()
    pixels = to_uint8(images, size)
    test = split(labels)
    index = np.arange(len(labels))
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".digits.", dir=out_dir)
    try:
        n_train = _write_set(os.path.join(tmp, TRAIN), pixels[~test], labels[~test], index[~test])
        n_test = _write_set(os.path.join(tmp, TEST), pixels[test], labels[test], index[test])
        atomic_write_bytes(os.path.join(tmp, MEAN),
                           mean_to_proto(image_mean(pixels[~test])).SerializeToString())
        for name, target in zip((TRAIN, TEST, MEAN), targets):
            if not os.path.exists(target):
                try:
                    os.rename(os.path.join(tmp, name), target)
                except OSError:
                    if not os.path.exists(target):  # not a concurrent build
                        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("Built the embedded digits dataset in %s: %d train and %d test images, "
             "1x%dx%d", out_dir, n_train, n_test, size, size)
    return targets


def is_canonical(source):
    """Whether ``source`` names one of the digits databases: its last two
    path components are digits/digits_train_lmdb or digits/digits_test_lmdb."""
    parts = os.path.normpath(source).split(os.sep)
    return len(parts) >= 2 and parts[-2] == "digits" and parts[-1] in (TRAIN, TEST)


def ensure_embedded(source):
    """Build the digits dataset where ``source`` points if it is missing and
    canonical; returns True when it built it."""
    if os.path.exists(source) or not is_canonical(source):
        return False
    log.info("%s does not exist: building the embedded digits dataset there", source)
    build_digits(os.path.dirname(os.path.normpath(source)))
    return True
