"""SyncedArray: a device array and its host copy, Caffe's SyncedMemory in small.

In GPU mode the engine computes on device arrays, while pycaffe's users read
and write ``blob.data`` as NumPy arrays (``net.blobs['data'].data[...] = x``,
``np.sum(net.params['ip'][0].data)``). Each device array of a Blob has a
SyncedArray holding the host copy and a *head*, which side is current:

    DEVICE  the device array is current; the host copy, if any, is stale.
            (The state of every array the engine has touched.)
    HOST    the host copy has been handed to user code, which may have written
            it: the host copy is the current one.
    SYNCED  both copies hold the same values: after a read-only snapshot
            (what ``net.forward()``/``backward()`` return), or a ``fill`` that
            wrote both.

Transitions (all on one SyncedArray, shared by the blobs that share an array):

    user view, head DEVICE   download device -> host copy; head = HOST
    user view, head HOST     nothing (the host copy is current)
    user view, head SYNCED   no copy; head = HOST
    snapshot, head DEVICE    download; head = SYNCED (the array handed out is
                             read-only: nothing to upload later)
    snapshot, other heads    no copy, head unchanged
    engine use, head HOST    upload host copy -> device (in place); head = DEVICE
    engine use, head SYNCED  no copy; head = DEVICE
    engine use, head DEVICE  nothing: the fast path is this one test (head == 0)
    engine fill(value)       the device array; the host copy too if it is out
                             (head != DEVICE), then head = SYNCED
    engine assigns an array  a new SyncedArray (head DEVICE) that takes over
                             the host copy (uploaded first if HOST), so a
                             held view is refreshed by the next view
                             (``handed_on``)

Every engine use counts as a write (it hands out the array, as Caffe's
``mutable_gpu_data()``) and every user view as one too (pycaffe's ``blob.data``
is ``mutable_cpu_data()`` in Caffe): reads and writes cannot be told apart, so
SYNCED is reached only where the package knows: read-only snapshots (a training
loop of ``net.forward(); net.backward()`` downloads the outputs and uploads
nothing) and ``fill`` (``net.clear_param_diffs()``: an array a user still holds
shows the zeros). What that costs: an array whose writable view was read is
uploaded at the engine's next use even if it was not written; an array nobody
viewed is never copied.

``TRANSFERS`` counts the copies ("upload", "download") for tests and profiles.
"""
import collections

import numpy as np

DEVICE, HOST, SYNCED = 0, 1, 2
TRANSFERS = collections.Counter()


class SyncedArray:
    """One device array (``device``), its host copy (``host``, None until a
    user view asks for it) and the head (DEVICE, HOST or SYNCED)."""

    __slots__ = ("device", "host", "head")

    def __init__(self, device):
        self.device = device
        self.host = None
        self.head = DEVICE

    def to_host(self, write=True):
        """The host copy, current: downloaded when the device is ahead. The
        head becomes HOST (the caller may write the copy), or, without
        ``write``, SYNCED after a download."""
        if self.head == DEVICE:
            device, host = self.device, self.host
            if host is None or host.shape != device.shape or host.dtype != device.dtype:
                host = self.host = np.empty(device.shape, device.dtype)
            if device.flags.c_contiguous:
                device.get(out=host)
            else:
                host[...] = device.get()
            TRANSFERS["download"] += 1
            self.head = SYNCED
        if write:
            self.head = HOST
        return self.host

    def to_device(self):
        """Upload a host copy that is ahead into the device array (in place, so
        every view of the device memory sees it); the head becomes DEVICE."""
        if self.head == HOST:
            device = self.device
            if device.flags.c_contiguous:
                device.set(self.host)
            else:
                device[...] = _module(device).asarray(self.host)
            TRANSFERS["upload"] += 1
        self.head = DEVICE

    def handed_on(self, device):
        """The SyncedArray of ``device``, an array the engine assigns in place of
        this one (a layer's ``top.data = y``). It takes over the host copy when
        shape and dtype match, so a NumPy array a user holds stays the blob's
        host memory across passes (as pycaffe's ``blob.data`` is the blob's CPU
        memory) and the next view downloads into it; no copy is made for that.
        A host copy ahead of this device array is uploaded first (another blob
        may share this SyncedArray), and this one keeps no host copy."""
        new = SyncedArray(device)
        host = self.host
        if host is not None and host.shape == device.shape and host.dtype == device.dtype:
            if self.head == HOST:
                self.to_device()
            self.host, self.head = None, DEVICE
            new.host = host
        return new

    def fill(self, value):
        """Set every value; when the host copy is out, there too (SYNCED), so
        an array a user holds shows the new values."""
        self.device.fill(value)
        if self.head != DEVICE:
            self.host.fill(value)
            self.head = SYNCED


class _NumpyArray:
    """The SyncedArray of every NumPy blob: the array is the host, nothing to
    sync; its head is always DEVICE, so the engine's test is the same."""

    __slots__ = ()
    head = DEVICE


NUMPY = _NumpyArray()


def host_view(memory, shape, write=True):
    """``memory``'s current host copy in ``shape`` (a NumPy view, no copy);
    without ``write`` a read-only snapshot (SYNCED, see above)."""
    host = memory.to_host(write)
    if write:
        return host if host.shape == shape else host.reshape(shape)
    view = host.reshape(shape)
    view.flags.writeable = False
    return view


def _module(device):
    from . import backend
    return backend.get_array_module(device)
