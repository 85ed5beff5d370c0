"""Blob: an N-D array of values (``data``) and of their gradients (``diff``).

As in Caffe, a blob has a shape (a list of ints, any number of axes), and both
arrays have that shape. ``diff`` is allocated on first use, so inference nets
never pay for gradients.

Conventions the layers follow:

* Layer outputs may be written in place (``top.data[...] = y``) or assigned
  (``top.data = y``; the shape must match). Assignment replaces the array, so a
  layer that shares memory between blobs (Split, Flatten, Reshape) re-shares in
  every ``forward``/``backward`` rather than relying on earlier views.
* Parameter blobs are only ever changed in place (``w.diff += g``), because a
  parameter may be shared by several layers through one array.

A blob larger than the machine's memory (a typo'd ``num_output: 1000000000``),
or in GPU mode than the device's, is refused before the allocator tries:
``BlobTooLargeError`` (a MemoryError, as pycaffe's std::bad_alloc) with the
shape and the bytes it would need; the net adds the layer and the top.

Host views in GPU mode (``core/synced.py``): the engine works on the device
arrays ``data``/``diff``; pycaffe's users get ``blob.pycaffe_view()`` (what
``net.blobs``, ``net.params`` and a Python layer's arguments hold), whose
``data``/``diff`` are NumPy arrays kept in step with the device as Caffe's
SyncedMemory does. Each array has a ``SyncedArray`` (shared by blobs that share
it); the engine's ``data``/``diff`` check its head (one attribute test) and
upload a host copy that is ahead. On the NumPy backend there is nothing to
sync: the view is the blob itself.
"""
import os

import numpy as np

from . import backend
from .synced import NUMPY, SyncedArray, host_view


def _shape_tuple(shape):
    return tuple(int(d) for d in shape)


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


_PHYSICAL_MEMORY = _physical_memory()


def human_bytes(n):
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return ("%d %s" if unit == "bytes" else "%.1f %s") % (n, unit)
        n /= 1000.0


class BlobTooLargeError(MemoryError):
    """A blob's arrays do not fit in memory. ``shape``, ``nbytes`` (one array),
    ``blob`` (the Blob reshaped, None for a new one) and ``what`` (set by the
    layer: "param 0 (weight)")."""

    def __init__(self, shape, dtype, nbytes, reason, blob=None):
        self.shape, self.dtype, self.nbytes, self.blob = shape, dtype, nbytes, blob
        self.what = None
        self.reason = reason
        super().__init__(self.describe())

    def describe(self):
        return ("shape %s (%d values) would need %s as %s: %s"
                % (" ".join(str(d) for d in self.shape), int(np.prod(self.shape, dtype=object)),
                   human_bytes(self.nbytes), self.dtype.name, self.reason))


def _memory(xp):
    """(bytes, where) of the memory ``xp`` allocates from: the machine's for
    NumPy, the current device's for CuPy (None when unknown)."""
    if xp is np:
        return _PHYSICAL_MEMORY, "this machine has"
    runtime = getattr(getattr(xp, "cuda", None), "runtime", None)
    try:
        return int(runtime.memGetInfo()[1]), "GPU %d has" % runtime.getDevice()
    except Exception:       # no runtime (a stand-in module), or CUDA's own error
        return None, None


def _zeros(xp, shape, dtype, blob=None):
    """``xp.zeros(shape, dtype)``, or BlobTooLargeError."""
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    memory, where = _memory(xp) if nbytes > (1 << 30) else (None, None)
    if memory and nbytes > memory:
        raise BlobTooLargeError(shape, dtype, nbytes, "%s %s of memory"
                                % (where, human_bytes(memory)), blob)
    try:
        return xp.zeros(shape, dtype)
    except (MemoryError, ValueError) as exc:   # ValueError: "array is too big"
        if isinstance(exc, ValueError) and "too big" not in str(exc):
            raise
        raise BlobTooLargeError(shape, dtype, nbytes, "%s: %s" % (type(exc).__name__, exc),
                                blob) from None


class Blob:
    """Data and diff arrays of one shape; float32 unless told otherwise."""

    def __init__(self, shape=(), dtype=None, xp=None):
        self._xp = xp or backend.array_module()
        self._dtype = np.dtype(dtype or backend.default_dtype())
        self._shape = _shape_tuple(shape)
        self._data = _zeros(self._xp, self._shape, self._dtype)
        self._dmem = self._memory(self._data)
        self._diff = None
        self._gmem = NUMPY
        self._view = None

    def _memory(self, array):
        """The SyncedArray of a new array of this blob (NUMPY for a NumPy one:
        it is its own host copy)."""
        return NUMPY if self._xp is np else SyncedArray(array)

    # -- shape ---------------------------------------------------------------
    @property
    def shape(self):
        return self._shape

    @property
    def count(self):
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def num_axes(self):
        return len(self._shape)

    @property
    def dtype(self):
        return self._dtype

    @property
    def xp(self):
        return self._xp

    # Caffe's legacy 4-D accessors (missing axes count as 1).
    def legacy_shape(self, index):
        if index >= self.num_axes or index < -self.num_axes:
            return 1
        return self._shape[index]

    num = property(lambda self: self.legacy_shape(0))
    channels = property(lambda self: self.legacy_shape(1))
    height = property(lambda self: self.legacy_shape(2))
    width = property(lambda self: self.legacy_shape(3))

    def count_range(self, start, end=None):
        """Product of the dims in axes [start, end)."""
        end = self.num_axes if end is None else end
        return int(np.prod(self._shape[start:end], dtype=np.int64))

    def canonical_axis(self, axis):
        """Caffe's CanonicalAxisIndex: negative axes count from the end."""
        n = self.num_axes
        if not -n <= axis < max(n, 1):
            raise IndexError("axis %d out of range for a %d-axis blob %s"
                             % (axis, n, self._shape))
        return axis + n if axis < 0 else axis

    def reshape(self, *shape):
        """Reshape to ``shape`` (ints or one sequence). Values are kept when the
        count is unchanged; otherwise the arrays are reallocated as zeros."""
        if len(shape) == 1 and not np.isscalar(shape[0]):
            shape = shape[0]
        shape = _shape_tuple(shape)
        if any(d < 0 for d in shape):
            raise ValueError("blob shape %s has a negative dimension" % (shape,))
        if shape == self._shape:
            return
        if int(np.prod(shape, dtype=np.int64)) == self.count:
            self._data = self._reshaped(self._data, "_dmem", shape)
            if self._diff is not None:
                self._diff = self._reshaped(self._diff, "_gmem", shape)
        else:
            self._data = _zeros(self._xp, shape, self._dtype, self)
            self._dmem = self._memory(self._data)
            self._diff = None
            self._gmem = NUMPY
        self._shape = shape

    def _reshaped(self, array, slot, shape):
        """The same values in ``shape``: a view of the same memory (its head and
        host copy unchanged), or, where reshaping copies, a memory of its own."""
        if array.flags.c_contiguous:
            return array.reshape(shape)
        memory = getattr(self, slot)
        if memory.head:
            memory.to_device()
        array = array.reshape(shape)
        setattr(self, slot, self._memory(array))
        return array

    # -- arrays --------------------------------------------------------------
    @property
    def data(self):
        """The engine's array (a device array in GPU mode); a host copy ahead of
        it (written through the pycaffe view) is uploaded first."""
        if self._dmem.head:
            self._dmem.to_device()
        return self._data

    @data.setter
    def data(self, value):
        self._data = self._checked(value, "data")
        self._dmem = self._handed_on(self._dmem, self._data)

    @property
    def diff(self):
        if self._gmem.head:
            self._gmem.to_device()
        elif self._diff is None:
            self._diff = _zeros(self._xp, self._shape, self._dtype, self)
            self._gmem = self._memory(self._diff)
        return self._diff

    @property
    def has_diff(self):
        """False until the diff is first used, and again after a reshape to
        another count (which reallocates it as zeros)."""
        return self._diff is not None

    @diff.setter
    def diff(self, value):
        self._diff = self._checked(value, "diff")
        self._gmem = self._handed_on(self._gmem, self._diff)

    def _handed_on(self, memory, array):
        """The SyncedArray of ``array``, assigned in place of ``memory``'s: it
        keeps the host copy a user may hold (``SyncedArray.handed_on``)."""
        if self._xp is np:
            return NUMPY
        return SyncedArray(array) if memory is NUMPY else memory.handed_on(array)

    def fill_diff(self, value):
        """Set every diff value (``net.clear_param_diffs``); a host copy a user
        holds gets the value too (core/synced.py, SYNCED)."""
        if self._xp is np:
            self.diff[...] = value
        elif self._diff is None:
            self.diff.fill(value)
        else:
            self._gmem.fill(value)      # not through ``diff``: that would upload first

    # -- pycaffe's host views ---------------------------------------------------
    def host_data(self, write=True):
        """``data`` as a NumPy array (pycaffe's ``blob.data``): the array itself
        on the NumPy backend; in GPU mode the host copy, downloaded if the device
        is ahead. Writes to it reach the device before the engine's next use.
        ``write=False``: a read-only snapshot, never uploaded (core/synced.py)."""
        if self._xp is np:
            return self._data
        return host_view(self._dmem, self._shape, write)

    def host_diff(self, write=True):
        """``diff`` as a NumPy array, as ``host_data``."""
        if self._xp is np:
            return self.diff
        if self._diff is None:
            self.diff
        return host_view(self._gmem, self._shape, write)

    def pycaffe_view(self):
        """What pycaffe's users get for this blob: the blob itself on the NumPy
        backend, else its ``BlobView`` (``data``/``diff`` are NumPy arrays)."""
        if self._xp is np:
            return self
        if self._view is None:
            self._view = BlobView(self)
        return self._view

    def _checked(self, value, what):
        """``value`` as this blob's array: its shape, cast to its dtype, on its
        device (a NumPy array assigned in GPU mode is copied to the device)."""
        if tuple(value.shape) != self._shape:
            raise ValueError("cannot set %s of shape %s on a blob of shape %s"
                             % (what, tuple(value.shape), self._shape))
        if backend.get_array_module(value) is not self._xp:
            value = backend.to_device(value, self._xp)
        if value.dtype != self._dtype:
            value = value.astype(self._dtype)
        return value

    def astype(self, dtype):
        """Convert both arrays to ``dtype`` in this blob."""
        self._dtype = np.dtype(dtype)
        self._data = self.data.astype(self._dtype)
        self._dmem = self._memory(self._data)
        if self._diff is not None:
            self._diff = self.diff.astype(self._dtype)
            self._gmem = self._memory(self._diff)

    def set_values(self, values):
        """Copy host (NumPy) ``values`` of this blob's shape into ``data``, cast to
        the blob's dtype and moved to its device."""
        self.data[...] = backend.to_device(values.astype(self._dtype, copy=False), self._xp)

    def share_data(self, other):
        """Use ``other``'s data array (viewed in this blob's shape) and its
        SyncedArray, as Caffe's ShareData shares the SyncedMemory."""
        other = getattr(other, "_blob", other)          # a BlobView: its blob
        if other.count != self.count:
            raise ValueError("share_data: counts differ (%d vs %d)"
                             % (other.count, self.count))
        self._data = other.data.reshape(self._shape)
        self._dmem = other._dmem

    def share_diff(self, other):
        other = getattr(other, "_blob", other)
        if other.count != self.count:
            raise ValueError("share_diff: counts differ (%d vs %d)"
                             % (other.count, self.count))
        self._diff = other.diff.reshape(self._shape)
        self._gmem = other._gmem

    def to(self, xp):
        """Move both arrays to array module ``xp`` (numpy or cupy)."""
        if xp is self._xp:
            return
        data = backend.to_device(self.data, xp)
        diff = None if self._diff is None else backend.to_device(self.diff, xp)
        self._xp = xp
        self._data, self._dmem = data, self._memory(data)
        self._diff, self._gmem = diff, (NUMPY if diff is None else self._memory(diff))
        self._view = None

    def __repr__(self):
        return "Blob(shape=%s, dtype=%s)" % (self._shape, self._dtype.name)


class BlobView:
    """pycaffe's face of a device Blob: ``data`` and ``diff`` are NumPy arrays,
    as Caffe's ``blob.data`` (its ``mutable_cpu_data``) always is.

    Reading ``view.data`` downloads the values if the device is ahead and from
    then on counts the host copy as the newer one (the caller may write it:
    ``view.data[...] = x``); the engine's next use of the blob uploads it. The
    array is the blob's host memory (kept when a layer assigns its top anew):
    held across a forward/backward/solver step it shows the new values once
    ``view.data`` is read again, as Caffe's CPU copy does. Assigning
    (``view.data = array``) copies into the blob; everything else (``shape``,
    ``reshape``, ``count``, ``num``...) is the Blob's. ``isinstance(view, Blob)``
    holds.
    """

    __slots__ = ("_blob",)

    def __init__(self, blob):
        object.__setattr__(self, "_blob", blob)

    @property
    def __class__(self):                  # isinstance(view, Blob)
        return Blob

    @property
    def data(self):
        return self._blob.host_data()

    @data.setter
    def data(self, value):
        self._blob.data = value

    @property
    def diff(self):
        return self._blob.host_diff()

    @diff.setter
    def diff(self, value):
        self._blob.diff = value

    def __getattr__(self, name):
        return getattr(self._blob, name)

    def __setattr__(self, name, value):
        setattr(self._blob, name, value)

    def __repr__(self):
        return repr(self._blob)
