"""NCCL: GPU all-reduce with CuPy's NCCL bindings, and pycaffe's ``NCCL`` class.

``NCCLComm(uid, size, rank)`` is the communicator over ``cupy.cuda.nccl``:
one fused ``allReduce`` (sum) / ``bcast`` over a flat device buffer of all
arrays, on the current stream. UNTESTED: no GPU was available when it was
written; the CPU (MPI) path is the one the tests run.

``NCCL(solver, uid)`` is pycaffe's object for upstream's multi-GPU training
script (``caffe.NCCL.new_uid()`` in the parent; in each worker
``set_solver_count/rank``, ``set_multiprocess(True)``, ``NCCL(solver, uid)``,
``bcast()``, ``solver.add_callback(nccl)``). Its communicator: NCCL in GPU mode
(CuPy with NCCL present); on CPU it is backed by MPI, so the script must be
started by ``mpirun -np N`` with N equal to the solver count (the ``uid`` is
then unused); with solver count 1, the one-process communicator.

The uid is ``bytes``, as pycaffe's (its ``ncclUniqueId`` as a string, which
scripts pass to worker processes): CuPy's ``get_unique_id()`` tuple of signed
chars becomes one byte each, and ``NCCLComm`` turns it back.
"""
import pickle

import numpy as np

from ..core import backend
from . import world
from .comm import Communicator, LocalComm, flatten, unflatten
from .sync import DataParallel, world_communicator

_CPU_UID = b"pycaffe_lowbit-mpi"


def uid_to_bytes(unique_id):
    """CuPy's NCCL unique id (a tuple of C chars, -128..127 or 0..255) as bytes."""
    return bytes(int(c) & 0xFF for c in unique_id)


def uid_to_cupy(uid):
    """bytes (or CuPy's tuple) back to the tuple of signed chars CuPy takes."""
    if isinstance(uid, (bytes, bytearray)):
        return tuple(b - 256 if b > 127 else b for b in uid)
    return tuple(uid)


class NCCLComm(Communicator):  # pragma: no cover - needs GPUs (untested)
    def __init__(self, uid, size, rank):
        nccl = self.nccl = backend.nccl()
        self.size, self.rank = int(size), int(rank)
        self.comm = nccl.NcclCommunicator(self.size, uid_to_cupy(uid), self.rank)

    def _type(self, dtype):
        types = {np.dtype(np.float32): self.nccl.NCCL_FLOAT32,
                 np.dtype(np.float64): self.nccl.NCCL_FLOAT64,
                 np.dtype(np.uint8): self.nccl.NCCL_UINT8,
                 np.dtype(np.int64): self.nccl.NCCL_INT64}
        return types[np.dtype(dtype)]

    @staticmethod
    def _stream():
        return backend.cupy().cuda.get_current_stream().ptr

    def broadcast(self, arrays):
        cupy = backend.cupy()
        if self.size == 1 or not arrays:
            return arrays
        flat = flatten(list(arrays), cupy)
        self.comm.bcast(flat.data.ptr, flat.size, self._type(flat.dtype), 0, self._stream())
        unflatten(flat, arrays)
        return arrays

    def allreduce_sum(self, arrays):
        cupy = backend.cupy()
        if self.size == 1 or not arrays:
            return arrays
        flat = flatten(list(arrays), cupy)
        self.comm.allReduce(flat.data.ptr, flat.data.ptr, flat.size, self._type(flat.dtype),
                            self.nccl.NCCL_SUM, self._stream())
        unflatten(flat, arrays)
        return arrays

    def broadcast_object(self, obj):
        cupy = backend.cupy()
        payload = np.frombuffer(pickle.dumps(obj), np.uint8) if self.rank == 0 else None
        length = cupy.asarray([0 if payload is None else payload.size], np.int64)
        self.broadcast([length])
        buf = cupy.zeros(int(length[0]), np.uint8) if payload is None else cupy.asarray(payload)
        self.broadcast([buf])
        return obj if self.rank == 0 else pickle.loads(cupy.asnumpy(buf).tobytes())

    def barrier(self):
        cupy = backend.cupy()
        self.allreduce_sum([cupy.zeros(1, np.float32)])
        cupy.cuda.get_current_stream().synchronize()

    def abort(self, code=1):
        import os
        self.comm.abort()
        os._exit(int(code))


def _nccl_available():
    return backend.mode() == "gpu" and backend.nccl() is not None


class NCCL:
    """pycaffe's ``caffe.NCCL(solver, uid)``: see the module docstring."""

    def __init__(self, solver, uid):
        count, rank = world.solver_count(), world.solver_rank()
        if count == 1:
            comm = LocalComm()
        elif _nccl_available() and uid != _CPU_UID:  # pragma: no cover - GPUs
            comm = NCCLComm(uid, count, rank)
        else:
            comm = world_communicator()
            if (comm.size, comm.rank) != (count, rank):
                raise RuntimeError(
                    "NCCL on CPU is backed by MPI: solver count %d, rank %d, but the MPI "
                    "world has %d process(es) and this is rank %d; start the script with "
                    "'mpirun -np %d' and set_solver_rank(<its MPI rank>)"
                    % (count, rank, comm.size, comm.rank, count))
        self.comm = comm
        self._sync = DataParallel(solver, comm)

    @staticmethod
    def new_uid():
        """An NCCL unique id (GPU mode), or a placeholder when MPI backs NCCL."""
        if _nccl_available():  # pragma: no cover - GPUs
            return uid_to_bytes(backend.nccl().get_unique_id())
        return _CPU_UID

    def bcast(self):
        """Rank 0's params (and random generator state) on every rank."""
        self._sync.bcast()

    def on_start(self):
        self._sync.on_start()

    def on_gradients_ready(self):
        self._sync.on_gradients_ready()
