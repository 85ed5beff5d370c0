"""convert_mnist: MNIST's IDX files -> a database of Datums.

    lowbit-caffe convert_mnist [--backend=lmdb|leveldb] IMAGE_FILE LABEL_FILE DB_NAME

IDX (big-endian): images ``0x00000803, N, rows, cols`` then N*rows*cols uint8;
labels ``0x00000801, N`` then N uint8. Either file may be gzipped (as
downloaded: ``train-images-idx3-ubyte.gz``). Record ``i`` gets key ``"%08d" % i``
and a Datum ``channels=1, height=rows, width=cols, data, label``, as Caffe's
convert_mnist_data writes.
"""
import gzip
import logging

import numpy as np

from ..datum import DataError, array_to_datum
from .writer import DatumWriter, progress

log = logging.getLogger("pycaffe_lowbit")

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


def _read_bytes(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError("IDX file not found: %s" % path) from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise DataError("%s: broken gzip file (%s)" % (path, exc)) from None
    return data


def read_idx(path, magic):
    """The uint8 array of an IDX file whose magic number must be ``magic``
    (2051: images, shape (N, rows, cols); 2049: labels, shape (N,))."""
    data = _read_bytes(path)
    ndim = 3 if magic == IMAGE_MAGIC else 1
    header = 4 * (1 + ndim)
    what = "image" if magic == IMAGE_MAGIC else "label"
    found = int(np.frombuffer(data, ">u4", 1)[0]) if len(data) >= 4 else None
    if found != magic:
        raise DataError("%s: not an IDX %s file (magic number %s, expected %d)"
                        % (path, what, found, magic))
    if len(data) < header:
        raise DataError("%s: too short for an IDX %s file (%d bytes)" % (path, what, len(data)))
    dims = np.frombuffer(data, ">u4", ndim, 4).tolist()
    count = int(np.prod(dims))
    if len(data) - header != count:
        raise DataError("%s: header says %s = %d values but the file holds %d"
                        % (path, " x ".join(map(str, dims)), count, len(data) - header))
    return np.frombuffer(data, np.uint8, count, header).reshape(dims)


def convert_mnist(image_file, label_file, db_path, backend="lmdb"):
    """Write the IDX images with their labels to a new database; returns N."""
    images = read_idx(image_file, IMAGE_MAGIC)
    labels = read_idx(label_file, LABEL_MAGIC)
    if len(images) != len(labels):
        raise DataError("%s holds %d images but %s holds %d labels"
                        % (image_file, len(images), label_file, len(labels)))
    with DatumWriter(db_path, backend, log_commits=False) as writer:
        log.info("A total of %d items.", len(images))
        log.info("Rows: %d Cols: %d", images.shape[1], images.shape[2])
        for i in progress(range(len(images)), len(images), "convert_mnist"):
            writer.put("%08d" % i, array_to_datum(images[i][None], int(labels[i])))
    log.info("Processed %d files.", writer.count)
    return writer.count
