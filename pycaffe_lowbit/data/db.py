"""The key-value databases Caffe reads and writes: LMDB and LevelDB.

``open_db(path, backend, mode)`` gives a database with ``len(db)``,
``db.items()`` (every (key, value) in key order, as Caffe's cursor walks it;
``items(buffers=True)``: values as memoryviews where the backend can, LMDB's
pointing into its memory map, valid until the database is closed),
and for mode "w" (a new database, as Caffe's NEW) or "a" (append),
``db.put(key, value)`` and ``db.commit()``. LevelDB needs the optional plyvel
package (``pip install pycaffe_lowbit[leveldb]``).

Several readers of one database in a process (a train and a test net, two
nets on one LMDB) share one open handle, because neither LMDB nor LevelDB
allows a second open of the same path in a process; each reader walks it with
its own cursor (``items()``), and the handle closes with its last reader.
"""
import os
import threading

from .datum import DataError
from ..core.lazy import lazy_module

lmdb = lazy_module("lmdb")  # imported on first use (core/lazy.py)

BACKENDS = ("lmdb", "leveldb")


def backend_name(backend):
    """'lmdb' / 'leveldb' from a string or DataParameter.DB enum value (0, 1)."""
    if isinstance(backend, int):
        return ("leveldb", "lmdb")[backend]
    name = str(backend).lower()
    if name not in BACKENDS:
        raise DataError("unknown database backend %r (expected lmdb or leveldb)" % backend)
    return name


def open_db(path, backend="lmdb", mode="r"):
    """Open the database at ``path``; ``mode`` is "r", "w" (create; the path
    must not exist) or "a" (open or create for writing)."""
    if mode not in ("r", "w", "a"):
        raise ValueError("mode must be 'r', 'w' or 'a', got %r" % mode)
    name = backend_name(backend)
    if mode == "r" and not os.path.exists(path):
        raise DataError("%s database not found: %s" % ({"lmdb": "LMDB", "leveldb": "LevelDB"}[name], path))
    if mode == "w" and os.path.exists(path):
        raise DataError("%s already exists; remove it or choose another output path" % path)
    return (LMDB if name == "lmdb" else LevelDB)(path, mode)


class _SharedHandles:
    """Read handles by real path, counted: ``acquire`` opens on first use,
    ``release`` closes after the last user."""

    def __init__(self):
        self._lock = threading.Lock()
        self._open = {}

    def acquire(self, path, opener):
        key = os.path.realpath(path)
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                entry = self._open[key] = [opener(), 0]
            entry[1] += 1
            return entry[0]

    def release(self, path, closer):
        key = os.path.realpath(path)
        with self._lock:
            entry = self._open.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del self._open[key]
                closer(entry[0])


_READERS = _SharedHandles()


class _Database:
    """What both backends share: ``handle`` (the open lmdb Environment or plyvel
    DB), released to the shared readers on ``close`` in mode "r", else
    committed and closed."""
    handle = None

    def close(self):
        if self.handle is None:
            return
        self._end_read()
        if self.mode == "r":
            _READERS.release(self.path, lambda handle: handle.close())
        else:
            self.commit()
            self.handle.close()
        self.handle = None

    def _end_read(self):
        """End what ``items(buffers=True)`` keeps open."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LMDB(_Database):
    """An LMDB environment (a folder holding data.mdb)."""
    _MAP_SIZE = 1 << 30

    def __init__(self, path, mode):
        self.path = path
        self.mode = mode
        try:
            if mode == "r":
                if not os.path.isfile(os.path.join(path, "data.mdb")):
                    raise DataError("%s is not an LMDB database (no data.mdb in it)" % path)
                # No lock file: reading never writes into the data folder, so
                # read-only folders and shipped LMDBs (data.mdb only) open.
                self.handle = _READERS.acquire(path, lambda: lmdb.open(
                    path, readonly=True, lock=False, readahead=False))
            else:
                os.makedirs(path, exist_ok=True)
                self.handle = lmdb.open(path, map_size=self._MAP_SIZE)
        except lmdb.Error as exc:
            raise DataError("cannot open LMDB %s: %s" % (path, exc)) from None
        self._pending = []
        self._txn = None

    def __len__(self):
        return self.handle.stat()["entries"]

    def items(self, buffers=False):
        if not buffers:
            with self.handle.begin(buffers=False) as txn:
                yield from txn.cursor()
            return
        # One read transaction for the reader's life (as Caffe's LMDBCursor):
        # the memoryviews stay valid across passes, until close().
        if self._txn is None:
            self._txn = self.handle.begin(buffers=True)
        yield from self._txn.cursor()

    def _end_read(self):
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    def put(self, key, value):
        self._pending.append((_bytes(key), bytes(value)))

    def commit(self):
        """Write pending puts in one transaction, doubling the memory map
        whenever it is full (as Caffe's LMDB writer does)."""
        while self._pending:
            try:
                with self.handle.begin(write=True) as txn:
                    for key, value in self._pending:
                        txn.put(key, value)
                self._pending = []
            except lmdb.MapFullError:
                self.handle.set_mapsize(self.handle.info()["map_size"] * 2)


class LevelDB(_Database):
    """A LevelDB database (needs plyvel)."""

    def __init__(self, path, mode):
        try:
            import plyvel
        except ImportError:
            raise DataError("LevelDB support needs the plyvel package: "
                            "pip install 'pycaffe_lowbit[leveldb]' (or pip install plyvel); "
                            "or convert the data to LMDB") from None
        self.path = path
        self.mode = mode
        try:
            if mode == "r":
                self.handle = _READERS.acquire(path, lambda: plyvel.DB(path))
            else:
                self.handle = plyvel.DB(path, create_if_missing=True)
        except Exception as exc:  # plyvel raises its own Error types
            raise DataError("cannot open LevelDB %s: %s" % (path, exc)) from None
        self._batch = None

    def __len__(self):
        return sum(1 for _ in self.handle.iterator(include_value=False))

    def items(self, buffers=False):
        yield from self.handle.iterator()

    def put(self, key, value):
        if self._batch is None:
            self._batch = self.handle.write_batch()
        self._batch.put(_bytes(key), value)

    def commit(self):
        if self._batch is not None:
            self._batch.write()
            self._batch = None


def _bytes(key):
    return key.encode() if isinstance(key, str) else bytes(key)
