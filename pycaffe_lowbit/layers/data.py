"""Data: Datum records from an LMDB or LevelDB database (Caffe's DataLayer).

data_param: ``source`` (the database, relative to the working directory),
``backend`` (LMDB or LEVELDB; the proto's default is LEVELDB), ``batch_size``,
``rand_skip`` (skip a random r records at the start, r uniform on
0..rand_skip-1, as Caffe's ``rand() % rand_skip``), ``prefetch`` (batches read
ahead), ``workers`` (ours: threads decoding and transforming each batch, see
data/workers.py; the batches do not depend on it). Records are read without
copies (LMDB values are views of its memory map, a Datum's pixels a view of
its record: data.datum.read_datum). Records are read in key order, from the start again after the last
("Restarting data prefetching from start."); each layer has its own cursor, so
a train and a test net, or two nets, can read one database.

Tops: data (batch, C, h, w) from the transform of each record (see
data.transformer), label (batch,) from Datum.label, float32. The first record
shapes the tops at setup, the first record of each batch shapes that batch; the
others must have its size (or at least the crop size, with a crop), else a
DataError names the database and the record.

Data-parallel training (``parallel.world``: solver count N > 1, this solver's
rank r): in phase TRAIN the layer keeps only the records at positions r, r+N,
r+2N, ... of the endless record stream (Caffe's DataLayer::Skip), so batch k of
the N ranks together holds exactly the N*batch records of batch k of a single
solver with batch N*batch. TEST nets read every record (only rank 0 tests).
"""
import itertools
import logging
import weakref

import numpy as np

from ..data import sources
from ..data.datum import DataError, read_datum
from ..data.db import backend_name, open_db
from ..data.datasets import ensure_embedded
from ..parallel import world
from ..proto import caffe_pb2
from ._data_base import BatchBuffers, PrefetchingDataLayer, checked_shape, transform_batch
from .registry import register

log = logging.getLogger("pycaffe_lowbit")

_LEGACY_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


@register("Data")
class Data(PrefetchingDataLayer):

    def data_setup(self):
        p = self.param.data_param
        batch_size = self.check_batch_size(p.batch_size)
        for field in _LEGACY_FIELDS:
            if p.HasField(field):
                log.warning("layer '%s': data_param.%s is deprecated and ignored, as in "
                            "Caffe; set transform_param.%s", self.name, field, field)
        name = backend_name(p.backend)
        kind = {"lmdb": "LMDB", "leveldb": "LevelDB"}[name]
        ensure_embedded(p.source)  # data/digits/digits_*_lmdb: built on first use
        sources.require(self.name, "data_param.source", p.source, kind + " database",
                        "/path/to/" + name)
        db = open_db(p.source, name)
        log.info("Opened %s %s", name, p.source)
        stride = (0, 1)
        if self.phase == caffe_pb2.TRAIN and world.solver_count() > 1:
            stride = (world.solver_rank(), world.solver_count())
            log.info("Solver rank %d of %d reads records %d, %d, ... of %s", stride[0],
                     stride[1], stride[0], stride[0] + stride[1], p.source)
        reader = DatumReader(db, p.source, batch_size, self.transformer, stride, self.pool)
        if p.rand_skip:
            skip = int(self.rng.integers(p.rand_skip))
            log.info("Skipping first %d data points.", skip)
            reader.skip(skip)
        return reader, (batch_size,) + reader.first_shape()

    def workers_field(self):
        return self.param.data_param.workers


class DatumReader:
    """Batches of transformed Datums from a database, cycling in key order;
    ``stride`` (r, N) keeps stream positions r, r+N, ... (the whole stream for
    (0, 1))."""

    def __init__(self, db, source, batch_size, transformer, stride=(0, 1), pool=None):
        self.db = db
        self.pool = pool
        self.buffers = BatchBuffers()
        self.crops = False          # the GPU path: CropBatches (layers/_data_device.py)
        self.source = source
        self.batch_size = batch_size
        self.transformer = transformer
        # Closed when the reader goes; not at interpreter exit, where a data
        # thread may still be reading its memory (the process's end frees it).
        weakref.finalize(self, db.close).atexit = False
        rank, size = stride
        self._records = _walk(db, source)
        if size > 1:
            self._records = itertools.islice(self._records, rank, None, size)
        self._head = [next(self._records)]

    def _next(self):
        return self._head.pop() if self._head else next(self._records)

    def skip(self, n):
        """Skip ``n`` records (the first is read again for the shapes)."""
        for _ in range(n):
            self._next()
        self._head = [self._next()]

    def _image(self, record):
        index, key, value = record
        where = _where(self.source, index, key)
        datum = read_datum(value, where)
        return self.transformer.decode(datum, where), datum.label

    def first_shape(self):
        """(C, h, w) of the transformed first record."""
        record = self._head[0]
        image, _ = self._image(record)
        return checked_shape(self.transformer, image.shape,
                             _where(self.source, record[0], record[1]))

    def load_batch(self):
        """(data float32 (batch, C, h, w), labels float32 (batch,))."""
        records = [self._next() for _ in range(self.batch_size)]
        where = [_where(self.source, r[0], r[1]) for r in records]
        # Parsing is a few microseconds of Python (no copy): here. Decoding
        # JPEGs is most of the batch: in the workers, if any record is encoded.
        # A bad record stops the parse; the images before it are decoded first,
        # so the error reported is that of the first bad record, as in Caffe.
        datums, bad = [], None
        for record, name in zip(records, where):
            try:
                datums.append(read_datum(record[2], name))
            except DataError as exc:
                bad = exc
                break
        images = [None] * len(datums)

        def decode(i):
            images[i] = self.transformer.decode(datums[i], where[i])

        if self.pool is None or not any(d.encoded for d in datums):
            for i in range(len(datums)):
                decode(i)
        else:
            self.pool.run(decode, len(datums))
        if bad is not None:
            raise bad
        labels = np.array([d.label for d in datums], np.float32)
        data = transform_batch(self.transformer, images, where.__getitem__,
                               "resize when converting: convert_imageset "
                               "--resize_height/--resize_width", self.pool, self.buffers,
                               self.crops)
        return data, labels


def _where(source, index, key):
    return "%s record %d (key %r)" % (source, index, bytes(key).decode("utf-8", "replace"))


def _walk(db, source):
    """(index, key, value) of every record in key order, again and again."""
    while True:
        count = 0
        for key, value in db.items(buffers=True):
            yield count, key, value
            count += 1
        if count == 0:
            raise DataError("%s: the database is empty (no records)" % source)
        log.info("Restarting data prefetching from start.")
