"""HDF5Data and HDF5Output: blobs read from and written to HDF5 files.

HDF5Data (Caffe's HDF5DataLayer): hdf5_data_param.source is a text file
listing .h5 files (whitespace separated, paths relative to the working
directory, as in Caffe). Each file holds one dataset per top, named as the top
blob, float or double, with the same number of rows N (axis 0). Top i is
(batch_size, dataset_i.shape[1:]); a forward copies the next ``batch_size``
rows, moving on to the next file (loaded whole) when a file ends, mid-batch if
need be, and back to the first after the last. With ``shuffle`` the file order
is shuffled at setup and after every pass over the files, and the rows of a
file are shuffled each time it is loaded or restarted; rows of different files
are never mixed. No transform_param (Caffe refuses it), no prefetching, no
backward.

HDF5Output (Caffe's HDF5OutputLayer): two bottoms (data, label), no tops.
Setup creates (truncates) hdf5_output_param.file_name; each forward writes the
bottoms as datasets "data" and "label", float32 (the net's dtype), with
Caffe's legacy 4-D shapes (num, channels, height, width: a (N,) label is
stored as N x 1 x 1 x 1). Caffe aborts at a second forward (the datasets
exist); we replace them, so the file holds the last batch. No backward.
"""
import logging
import os

import numpy as np

from ..core import backend
from ..data import sources
from ..data.datum import DataError
from .base import Layer
from .registry import register
from ..core.lazy import lazy_module

h5py = lazy_module("h5py")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")


@register("HDF5Data")
class HDF5Data(Layer):
    exact_num_bottom = 0
    min_num_top = 1

    def layer_setup(self, bottom, top):
        p = self.param.hdf5_data_param
        if self.param.HasField("transform_param"):
            raise self.error("HDF5Data does not transform data: remove transform_param")
        if p.batch_size <= 0:
            raise self.error("batch_size must be positive (got %d)" % p.batch_size)
        self.names = list(self.param.top)
        self.rng = None
        self.arrays = None
        if p.shuffle:
            self.rng = np.random.default_rng(int(backend.rng().integers(1 << 63)))
        log.info("Loading list of HDF5 filenames from: %s", p.source)
        try:
            self.files = self._list(p.source)
        except DataError as exc:
            raise self.error(str(exc)) from None
        log.info("Number of HDF5 files: %d", len(self.files))
        self.order = self._permutation(len(self.files))
        self.file_index = 0
        try:
            self._load()
        except DataError as exc:
            raise self.error(str(exc)) from None
        for blob, array in zip(top, self.arrays):
            blob.reshape((p.batch_size,) + array.shape[1:])

    def _list(self, source):
        files = []
        for number, line in sources.read_lines(self.name, "hdf5_data_param.source", source,
                                               "HDF5 list file", "/path/to/h5_list.txt"):
            files.extend((path, number) for path in line.split())
        if not files:
            raise DataError("hdf5_data_param.source: must have at least 1 HDF5 filename "
                            "listed in %s" % source)
        return files

    def _permutation(self, n):
        return self.rng.permutation(n) if self.rng is not None else np.arange(n)

    def _load(self):
        """Load the current file's datasets; rows (re)start at 0."""
        path, number = self.files[self.order[self.file_index]]
        where = "%s (listed in %s line %d)" % (path, self.param.hdf5_data_param.source,
                                               number)
        if not os.path.isfile(path):
            raise DataError("HDF5 file %s not found" % where.replace(
                path, sources.resolved(path), 1))
        try:
            with h5py.File(path, "r") as f:
                arrays = []
                for name in self.names:
                    if name not in f or not isinstance(f[name], h5py.Dataset):
                        raise DataError("HDF5 file %s has no dataset '%s' for top '%s' "
                                        "(datasets: %s)" % (where, name, name,
                                                            ", ".join(sorted(f)) or "none"))
                    arrays.append(np.asarray(f[name], dtype=self.dtype))
        except OSError as exc:
            raise DataError("cannot read HDF5 file %s: %s" % (where, exc)) from None
        for name, array in zip(self.names, arrays):
            if array.ndim < 1 or len(array) != len(arrays[0]):
                raise DataError("HDF5 file %s: dataset '%s' has %s rows but '%s' has %d; "
                                "every dataset needs the same number of rows (axis 0)"
                                % (where, name, array.shape[:1] or "no", self.names[0],
                                   len(arrays[0])))
            if self.arrays is not None:
                old = self.arrays[self.names.index(name)]
                if array.shape[1:] != old.shape[1:]:
                    raise DataError("HDF5 file %s: dataset '%s' rows are %s, but the "
                                    "first file's were %s" % (where, name, array.shape[1:],
                                                              old.shape[1:]))
        if len(arrays[0]) == 0:
            raise DataError("HDF5 file %s has no rows" % where)
        self.arrays = arrays
        self.rows = self._permutation(len(arrays[0]))
        self.row = 0

    def _advance(self, n):
        """Move ``n`` rows on; at the end of a file go to the next one."""
        self.row += n
        if self.row < len(self.rows):
            return
        if len(self.files) > 1:
            self.file_index += 1
            if self.file_index == len(self.files):
                self.file_index = 0
                self.order = self._permutation(len(self.files))
            self._load()
        else:
            self.row = 0
            self.rows = self._permutation(len(self.rows))

    def reshape(self, bottom, top):
        """The shapes are set at setup."""

    def forward(self, bottom, top):
        batch = self.param.hdf5_data_param.batch_size
        filled = 0
        while filled < batch:
            take = min(batch - filled, len(self.rows) - self.row)
            index = self.rows[self.row:self.row + take]
            for blob, array in zip(top, self.arrays):
                rows = array[index]
                blob.data[filled:filled + take] = blob.xp.asarray(rows)
            filled += take
            try:
                self._advance(take)
            except DataError as exc:
                raise self.error(str(exc)) from None

    def backward(self, top, propagate_down, bottom):
        """No bottoms."""


@register("HDF5Output")
class HDF5Output(Layer):
    exact_num_bottom = 2
    exact_num_top = 0

    def layer_setup(self, bottom, top):
        self.file_name = self.param.hdf5_output_param.file_name
        try:
            h5py.File(self.file_name, "w").close()
        except OSError as exc:
            raise self.error("hdf5_output_param.file_name: cannot create HDF5 file %s: %s"
                             % (sources.resolved(self.file_name), exc)) from None

    def reshape(self, bottom, top):
        if bottom[0].num != bottom[1].num:
            raise self.error("bottoms data and label must have the same batch size (num): "
                             "%d vs %d" % (bottom[0].num, bottom[1].num))
        for name, blob in zip(("data", "label"), bottom):
            if blob.num_axes > 4:
                raise self.error("bottom '%s' has %d axes; HDF5Output writes at most 4 "
                                 "(num, channels, height, width)" % (name, blob.num_axes))

    def forward(self, bottom, top):
        log.info("Saving HDF5 file %s", self.file_name)
        with h5py.File(self.file_name, "a") as f:
            for name, blob in zip(("data", "label"), bottom):
                shape = tuple(blob.legacy_shape(i) for i in range(4))
                values = backend.to_numpy(blob.data).reshape(shape)
                if name in f:
                    del f[name]
                f.create_dataset(name, data=values.astype(self.dtype))
        log.info("Successfully saved %d rows", bottom[0].num)

    def backward(self, top, propagate_down, bottom):
        """Nothing to propagate (as in Caffe)."""
