"""HDF5 weights in Caffe's ``.caffemodel.h5`` layout (Net::ToHDF5 /
Net::CopyTrainedLayersFromHDF5).

Layout::

    /data/<layer name>/0, /1, ...   one dataset per param blob, N-D, float32
    /diff/<layer name>/0, ...       the diffs, only when written with diffs

Every layer gets a group, with or without params. A param that shares another
layer's blob is not written under /data (Caffe saves only params that own
themselves), so a layer's indices can have gaps; its diff is written anyway.
Caffe matches layers by name and ignores the order of the groups (it walks
them by name); we write them in net order and read them in the file's order.

Layer names containing "/" (e.g. "inception_3a/1x1") become nested groups;
Caffe itself cannot write those, we read them back by walking the groups.
"""
import collections
import os

import numpy as np

from ..core import backend
from .caffemodel import atomic_output
from ..core.lazy import lazy_module

h5py = lazy_module("h5py")  # imported on first use (core/lazy.py)


def _write_group(root, layers, path):
    seen = set()
    for name, arrays in layers:
        name = str(name)
        if not name or name in (".", "..") or name.startswith("/") or name.endswith("/"):
            raise ValueError("%s: cannot store layer name %r in HDF5" % (path, name))
        if name in seen:
            raise ValueError("%s: two layers are named '%s'" % (path, name))
        seen.add(name)
        group = root.require_group(name)
        for i, array in enumerate(arrays):
            if array is not None:
                group.create_dataset(str(i), data=np.asarray(backend.to_numpy(array)))


def write_weights_hdf5(layers, path, diffs=None):
    """Write ``layers`` — (layer_name, [array, ...]) pairs, None for a param
    not saved — under /data, and ``diffs`` (the same form) under /diff,
    atomically."""
    path = os.fspath(path)
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            _write_group(f.create_group("data", track_order=True), layers, path)
            if diffs is not None:
                _write_group(f.create_group("diff", track_order=True), diffs, path)


def _read_layer(group, name, path):
    arrays = {}
    for key, obj in group.items():
        if not isinstance(obj, h5py.Dataset):
            continue
        if not key.isdigit():
            raise ValueError("%s: layer '%s' has a dataset named '%s'; param datasets "
                             "are named 0, 1, ..." % (path, name, key))
        arrays[int(key)] = obj[()]
    return [arrays.get(i) for i in range(max(arrays) + 1)] if arrays else []


def _walk(group, prefix, out, path):
    for key, obj in group.items():
        if not isinstance(obj, h5py.Group):
            continue
        name = prefix + key
        subgroups = [v for v in obj.values() if isinstance(v, h5py.Group)]
        arrays = _read_layer(obj, name, path)
        if arrays or not subgroups:
            out[name] = arrays
        if subgroups:
            _walk(obj, name + "/", out, path)


_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _written_size(head):
    """The end-of-file address an HDF5 superblock at the start of the file
    records, or None when ``head`` holds too little of it to tell."""
    if len(head) < 14 or not head.startswith(_SIGNATURE):
        return None
    version = head[8]
    if version in (0, 1):
        width, at = head[13], 24 + (4 if version == 1 else 0)
        at += 2 * width                       # after base and free-space addresses
    else:
        width, at = head[9], 12 + 2 * head[9]  # after base and extension addresses
    if width not in (2, 4, 8) or len(head) < at + width:
        return None
    return int.from_bytes(head[at:at + width], "little")


def open_failure(path, exc):
    """What is wrong with an HDF5 file h5py cannot open, in words: truncated
    (with the sizes), not HDF5 at all, or corrupt (with h5py's reason)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(64)
    if not size:
        return "not an HDF5 file (empty)"
    if head[:len(_SIGNATURE)] != _SIGNATURE[:len(head)]:
        return "not an HDF5 file (%d bytes, no HDF5 signature)" % size
    written = _written_size(head)
    if written is None:
        return "truncated HDF5 file: %d bytes, its header is incomplete" % size
    if size < written:
        return "truncated HDF5 file: %d bytes of the %d it was written with" % (size, written)
    return "corrupt HDF5 file (%s)" % exc


def read_weights_hdf5(path, group="data"):
    """OrderedDict layer name -> [arrays] from a Caffe HDF5 weights file
    (``group="diff"`` reads the diffs). A missing index (a param that was not
    saved) is None."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "HDF5 weights file not found", path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError("%s: %s" % (path, open_failure(path, e))) from None
    with f:
        if group not in f or not isinstance(f[group], h5py.Group):
            raise ValueError("%s: not Caffe HDF5 weights: no /%s group (found: %s)"
                             % (path, group, ", ".join(sorted(f.keys())) or "nothing"))
        out = collections.OrderedDict()
        _walk(f[group], "", out, path)
        return out
