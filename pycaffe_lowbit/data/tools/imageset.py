"""convert_imageset: images named in a list file -> a database of Datums.

    lowbit-caffe convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME

LISTFILE has one ``<file> <label>`` per line; the label follows the last space,
so file names may contain spaces. Record ``i`` (0-based, after the optional
shuffle) gets key ``"%08d_%s" % (i, file)``, as Caffe's tool.

A raw record is Caffe's CVMatToDatum: ``channels, height, width``, the (C, H, W)
uint8 pixels (BGR, or one gray channel with ``gray``), ``label`` and
``encoded: false``; byte for byte what Caffe writes. Images are read as OpenCV
reads them (colour: 3 channels even from a gray file) and resized with
``cv2.resize`` (bilinear) when both ``resize_height`` and ``resize_width`` are
positive.

An encoded record (``encoded``, or ``encode_type`` given) holds ``data``,
``label`` and ``encoded: true``. As in Caffe, the file's own bytes are stored
when no resize is asked, the channel count OpenCV read matches the colour
mode, and the file's extension matches the encoding (jpeg counts as jpg);
otherwise the decoded (resized) image is re-encoded with ``cv2.imencode``.
Re-encoded bytes depend on the OpenCV build (compression level, libpng/libjpeg
version), so they can differ from Caffe's bytes; a PNG still decodes to the
same pixels.

Unlike Caffe, which logs and skips an image it cannot read (keeping a gap in
the key numbering), a missing or unreadable image is an error naming the list
file line, and nothing is written.
"""
import logging
import os

import numpy as np

from ..datum import DataError, array_to_datum, encoded_datum
from .writer import DatumWriter, progress
from ...core.lazy import lazy_module

cv2 = lazy_module("cv2")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")


def read_list_file(path):
    """[(file, label, line_number)] from a ``<file> <label>`` list file.
    Blank lines are skipped; a line without a label or with a label that is
    not an integer is a DataError naming ``path:line``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise DataError("list file not found: %s" % path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError("cannot read list file %s: %s" % (path, exc)) from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        name, space, label = line.rpartition(" ")
        if not space or not name:
            raise DataError("%s:%d: expected '<file> <label>', got %r" % (path, number, line))
        try:
            entries.append((name, int(label), number))
        except ValueError:
            raise DataError("%s:%d: the label %r of %s is not an integer"
                            % (path, number, label, name)) from None
    return entries


def _ext_matches(filename, encoding):
    """Caffe's matchExt: the file's extension (lower case) is the encoding."""
    ext = filename.rsplit(".", 1)[-1].lower()
    encoding = encoding.lower()
    return ext == encoding or (encoding == "jpg" and ext == "jpeg")


def read_image(path, color=True, height=0, width=0, where="image"):
    """Caffe's ReadImageToCVMat: (H, W, 3) BGR or (H, W) gray uint8, resized
    bilinearly to ``height`` x ``width`` when both are positive."""
    if not os.path.isfile(path):
        raise DataError("%s: image file not found: %s" % (where, path))
    image = cv2.imread(path, cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError("%s: cannot read %s as an image (not a format OpenCV decodes)"
                        % (where, path))
    if height > 0 and width > 0:
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def image_to_datum(path, label, color=True, height=0, width=0, encoding="",
                   where="image"):
    """(Datum, (C, H, W) of the image read) for one image, as Caffe's
    ReadImageToDatum; ``encoding`` ("png", "jpg"...) makes an encoded Datum."""
    image = read_image(path, color, height, width, where)
    chw = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    if not encoding:
        datum = array_to_datum(chw, label)
        datum.encoded = False
        return datum, chw.shape
    if (chw.shape[0] == 3) == color and not height and not width \
            and _ext_matches(path, encoding):
        with open(path, "rb") as handle:
            return encoded_datum(handle.read(), label), chw.shape
    try:
        ok, buf = cv2.imencode("." + encoding, image)
    except cv2.error:
        ok = False
    if not ok:
        raise DataError("%s: OpenCV cannot encode %s as %r" % (where, path, encoding))
    return encoded_datum(buf.tobytes(), label), chw.shape


def _encoding_for(name, encoded, encode_type, where):
    if encode_type:
        return encode_type.lower().lstrip(".")
    if not encoded:
        return ""
    base = os.path.basename(name)
    if "." not in base:
        raise DataError("%s: cannot guess the encoding of %r from its extension; "
                        "give --encode_type" % (where, name))
    return base.rsplit(".", 1)[1].lower()


def convert_imageset(root, list_file, db_path, backend="lmdb", gray=False, shuffle=False,
                     resize_height=0, resize_width=0, check_size=False, encoded=False,
                     encode_type="", seed=0):
    """Write every image of ``list_file`` (paths relative to ``root``, which is
    prefixed as a string, as Caffe does) to a new database; returns the count.

    ``shuffle`` permutes the list with ``numpy.random.default_rng(seed)``: a
    fixed, reproducible order, not the one Caffe's std::shuffle gives."""
    entries = read_list_file(list_file)
    if shuffle:
        log.info("Shuffling data")
        order = np.random.default_rng(seed).permutation(len(entries))
        entries = [entries[i] for i in order]
    log.info("A total of %d images.", len(entries))
    if encode_type and not encoded:
        log.info("encode_type specified, assuming encoded=true.")
    height, width = max(0, resize_height), max(0, resize_width)
    for name, _, number in entries:
        if not os.path.isfile(root + name):
            raise DataError("%s:%d: image file not found: %s" % (list_file, number, root + name))
    first_shape = None
    with DatumWriter(db_path, backend) as writer:
        for index, (name, label, number) in enumerate(
                progress(entries, len(entries), "convert_imageset")):
            where = "%s:%d" % (list_file, number)
            encoding = _encoding_for(name, encoded, encode_type, where)
            datum, shape = image_to_datum(root + name, label, not gray, height, width,
                                          encoding, where)
            if check_size:
                first_shape = first_shape or shape
                if shape != first_shape:
                    raise DataError("%s: %s is %dx%dx%d but the first image is %dx%dx%d "
                                    "(--check_size)" % ((where, name) + shape + first_shape))
            writer.put("%08d_%s" % (index, name), datum)
    return writer.count
