"""compute_image_mean: the mean image of a Datum database, as Caffe computes it.

    lowbit-caffe compute_image_mean [--backend=lmdb|leveldb] INPUT_DB [OUTPUT_FILE]

For records x_1..x_N of shape (C, H, W), in key order:

    sum  = (((0 + x_1) + x_2) + ... + x_N)     float32, one record at a time
    mean = sum / N                             float32 division

exactly Caffe's float accumulation (its BlobProto holds floats), so the
.binaryproto is bit for bit Caffe's: legacy ``num=1, channels, height, width``
and packed float ``data``. The per-channel value logged is Caffe's
``mean_value channel [c]``: the float32 running sum of that channel's H*W mean
pixels, divided by H*W. Encoded records are decoded as stored (their own
channel count); uint8 ``data`` and ``float_data`` records both count.
"""
import logging

import numpy as np

from ..datum import DataError, datum_to_array, parse_datum
from ..db import backend_name, open_db
from ...formats.blobproto import array_to_proto
from ...formats.caffemodel import atomic_write_bytes
from ...proto import caffe_pb2
from .writer import progress

log = logging.getLogger("pycaffe_lowbit")

LOG_EVERY = 10000


def database_mean(path, backend="lmdb"):
    """The float32 (C, H, W) mean of every record, and the record count."""
    db = open_db(path, backend)
    log.info("Opened %s %s", backend_name(backend), path)
    total, count, shape = None, 0, None
    for key, value in progress(db.items(), len(db), "compute_image_mean"):
        where = "%s record %r" % (path, key.decode(errors="replace"))
        datum = parse_datum(value, where)
        if total is None:
            if datum.encoded:
                log.info("Decoding Datum")
            log.info("Starting iteration")
        pixels = datum_to_array(datum, where=where)
        if total is None:
            shape = pixels.shape
            total = np.zeros(shape, np.float32)
        elif pixels.shape != shape:
            raise DataError("%s has shape %dx%dx%d but the first record has %dx%dx%d; "
                            "every record needs the same size"
                            % ((where,) + pixels.shape + shape))
        total += pixels.astype(np.float32)
        count += 1
        if count % LOG_EVERY == 0:
            log.info("Processed %d files.", count)
    if not count:
        raise DataError("%s is empty: no records to average" % path)
    if count % LOG_EVERY:
        log.info("Processed %d files.", count)
    return total / np.float32(count), count


def mean_to_proto(mean):
    """BlobProto with Caffe's legacy 1 x C x H x W dims and float data."""
    proto = caffe_pb2.BlobProto(num=1, channels=mean.shape[0], height=mean.shape[1],
                                width=mean.shape[2])
    return array_to_proto(mean.astype(np.float32), proto=proto, with_shape=False)


def channel_means(mean):
    """Caffe's logged per-channel values: float32 sequential sum / (H*W)."""
    flat = mean.reshape(mean.shape[0], -1).astype(np.float32)
    sums = np.cumsum(flat, axis=1, dtype=np.float32)[:, -1]
    return sums / np.float32(flat.shape[1])


def compute_image_mean(input_db, output_file="", backend="lmdb"):
    """Compute, optionally write (atomically) and log the mean; returns it."""
    mean, _ = database_mean(input_db, backend)
    if output_file:
        log.info("Write to %s", output_file)
        atomic_write_bytes(output_file, mean_to_proto(mean).SerializeToString())
    log.info("Number of channels: %d", mean.shape[0])
    for c, value in enumerate(channel_means(mean)):
        log.info("mean_value channel [%d]: %g", c, value)
    return mean
