"""convert_cifar: CIFAR-10 / CIFAR-100 -> train and test databases plus their mean.

    lowbit-caffe convert_cifar [--label=fine|coarse] INPUT_FOLDER OUTPUT_FOLDER [lmdb|leveldb]

INPUT_FOLDER holds one of the four distributions as extracted from the
archive (or the folder the archive extracted to: cifar-10-batches-py, ...):

| distribution     | train files              | test file      | record |
|------------------|--------------------------|----------------|--------|
| CIFAR-10 binary  | data_batch_1..5.bin      | test_batch.bin | label, 3072 pixels |
| CIFAR-10 python  | data_batch_1..5          | test_batch     | pickle: data (N, 3072), labels |
| CIFAR-100 binary | train.bin                | test.bin       | coarse, fine, 3072 pixels |
| CIFAR-100 python | train                    | test           | pickle: data, fine_labels, coarse_labels |

The 3072 pixels are the 32x32 R, G and B planes. Output, as Caffe's
convert_cifar_data and create_cifar10.sh: ``cifar10_train_<backend>`` (keys
``"%05d"`` of the running index), ``cifar10_test_<backend>`` (``cifar100_...``
for CIFAR-100) and ``mean.binaryproto`` of the train set (compute_image_mean).
Each Datum is ``channels=3, height=32, width=32, data, label`` with the pixels
in the file's RGB plane order (Caffe does not reorder them to BGR). CIFAR-100
records get the ``fine`` label (100 classes) unless ``label="coarse"`` (20).
"""
import logging
import os
import pickle

import numpy as np

from ..datum import DataError, array_to_datum
from ..db import backend_name
from .image_mean import compute_image_mean
from .writer import DatumWriter, progress, remove_partial

log = logging.getLogger("pycaffe_lowbit")

PIXELS = 3 * 32 * 32
# name -> (train files, test file, binary?, number of label bytes, classes)
LAYOUTS = {
    "cifar10-binary": (["data_batch_%d.bin" % i for i in range(1, 6)], "test_batch.bin",
                       True, 1),
    "cifar10-python": (["data_batch_%d" % i for i in range(1, 6)], "test_batch", False, 1),
    "cifar100-binary": (["train.bin"], "test.bin", True, 2),
    "cifar100-python": (["train"], "test", False, 2),
}
SUBFOLDERS = ("cifar-10-batches-bin", "cifar-10-batches-py", "cifar-100-binary",
              "cifar-100-python")
CLASSES = {"cifar10": 10, "fine": 100, "coarse": 20}


def find_layout(folder):
    """(layout name, folder holding its files): the first distribution whose
    files are all in ``folder`` or in one of the archive's folder names."""
    for where in [folder] + [os.path.join(folder, sub) for sub in SUBFOLDERS]:
        for name, (train, test, _, _) in LAYOUTS.items():
            if all(os.path.isfile(os.path.join(where, f)) for f in train + [test]):
                return name, where
    raise DataError("%s holds no CIFAR distribution: expected data_batch_1..5(.bin) and "
                    "test_batch(.bin) (CIFAR-10) or train(.bin) and test(.bin) (CIFAR-100)"
                    % folder)


class _ArrayUnpickler(pickle.Unpickler):
    """Loads the CIFAR pickles (dicts of lists, bytes and NumPy arrays) and
    refuses every other class, so a crafted file cannot run code: the only
    callables a pickle may name are NumPy's array and dtype reconstructors and
    ``_codecs.encode`` (how Python 2 pickles store bytes), matched by exact
    module and name (so no ``ndarray.tofile`` through a dotted name)."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError("unexpected object %s.%s" % (module, name))


_PLAIN = (dict, list, str, bytes, int)


def _check_plain(obj, depth=0):
    """Only what a CIFAR batch holds: dicts, lists, str, bytes, ints and
    NumPy arrays of numbers (not of objects)."""
    if depth > 8:
        raise pickle.UnpicklingError("nesting deeper than a CIFAR batch")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise pickle.UnpicklingError("an array of Python objects")
        return
    if type(obj) not in _PLAIN:
        raise pickle.UnpicklingError("unexpected %s" % type(obj).__name__)
    if isinstance(obj, dict):
        for key, value in obj.items():
            _check_plain(key, depth + 1)
            _check_plain(value, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _check_plain(value, depth + 1)


def load_batch(path):
    """A CIFAR python batch file, unpickled by the restricted unpickler and
    checked to hold only plain data (``pickle.UnpicklingError`` otherwise)."""
    with open(path, "rb") as handle:
        batch = _ArrayUnpickler(handle, encoding="bytes").load()
    _check_plain(batch)
    return batch


def _read_python(path, label_key):
    try:
        batch = load_batch(path)
        data = np.asarray(batch[b"data"], np.uint8)
        labels = np.asarray(batch[label_key], np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise DataError("%s is not a CIFAR python batch (a pickled dict with b'data' and "
                        "%r): %s" % (path, label_key, exc)) from None
    if data.ndim != 2 or data.shape[1] != PIXELS or len(labels) != len(data):
        raise DataError("%s: expected data of shape (N, %d) and N labels, got %s and %d"
                        % (path, PIXELS, data.shape, len(labels)))
    return data, labels


def _read_binary(path, label_bytes, label_index):
    record = label_bytes + PIXELS
    raw = np.fromfile(path, np.uint8)
    if raw.size % record:
        raise DataError("%s: %d bytes is not a whole number of %d-byte CIFAR records"
                        % (path, raw.size, record))
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:], rows[:, label_index].astype(np.int64)


def read_batch(path, layout, label="fine"):
    """(pixels (N, 3072) uint8, labels (N,)) of one file, labels range-checked."""
    _, _, binary, label_bytes = LAYOUTS[layout]
    cifar100 = label_bytes == 2
    if binary:
        data, labels = _read_binary(path, label_bytes, 1 if cifar100 and label == "fine" else 0)
    else:
        key = {"fine": b"fine_labels", "coarse": b"coarse_labels"}[label] if cifar100 \
            else b"labels"
        data, labels = _read_python(path, key)
    classes = CLASSES[label if cifar100 else "cifar10"]
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if bad.size:
        raise DataError("%s record %d: label %d is outside 0..%d"
                        % (path, bad[0], labels[bad[0]], classes - 1))
    return data, labels


def _write(files, db_path, backend, layout, label):
    with DatumWriter(db_path, backend, log_commits=False) as writer:
        for number, path in enumerate(files, 1):
            if len(files) > 1:
                log.info("Training Batch %d", number)
            data, labels = read_batch(path, layout, label)
            for row, lab in progress(zip(data, labels), len(data), os.path.basename(path)):
                writer.put("%05d" % writer.count, array_to_datum(row.reshape(3, 32, 32), lab))
    return writer.count


def convert_cifar(input_folder, output_folder, backend="lmdb", label="fine"):
    """Write the train and test databases and the train mean; returns their paths."""
    if label not in ("fine", "coarse"):
        raise DataError("--label must be fine or coarse, got %r" % label)
    backend = backend_name(backend)
    layout, folder = find_layout(input_folder)
    train_files, test_file, _, _ = LAYOUTS[layout]
    prefix = layout.split("-")[0]
    os.makedirs(output_folder, exist_ok=True)
    train_db = os.path.join(output_folder, "%s_train_%s" % (prefix, backend))
    test_db = os.path.join(output_folder, "%s_test_%s" % (prefix, backend))
    mean_file = os.path.join(output_folder, "mean.binaryproto")
    for path in (train_db, test_db):
        if os.path.exists(path):
            raise DataError("%s already exists; remove it or choose another output folder"
                            % path)
    log.info("Reading %s from %s", layout, folder)
    done = []
    try:
        log.info("Writing Training data")
        _write([os.path.join(folder, f) for f in train_files], train_db, backend, layout, label)
        done.append(train_db)
        log.info("Writing Testing data")
        _write([os.path.join(folder, test_file)], test_db, backend, layout, label)
        done.append(test_db)
        compute_image_mean(train_db, mean_file, backend)
    except BaseException:
        remove_partial(*done)
        raise
    return train_db, test_db, mean_file
