"""``MPIComm``: the communicator over an MPI world (mpi4py), host buffers.

Each collective packs the arrays into one flat NumPy buffer (a CuPy array is
copied to the host first) and makes one MPI call: ``Bcast`` from rank 0, or an
in-place ``Allreduce`` with ``MPI.SUM``. ``abort`` is ``MPI_Abort`` on the
world, which ends every rank (``mpirun`` then exits non-zero).
"""
from ..core import backend
from .comm import Communicator, flatten, unflatten


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError("training across processes needs mpi4py: pip install "
                           "'pycaffe_lowbit[mpi]' (and an MPI such as Open MPI: "
                           "apt-get install openmpi-bin libopenmpi-dev)") from exc
    return MPI


class MPIComm(Communicator):
    def __init__(self, comm=None):
        self.MPI = _import_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()

    def _host_flat(self, arrays):
        xp = backend.get_array_module(*arrays)
        return xp, backend.to_numpy(flatten(list(arrays), xp))

    @staticmethod
    def _back(xp, flat, arrays):
        unflatten(backend.to_device(flat, xp), arrays)
        return arrays

    def broadcast(self, arrays):
        if self.size == 1 or not arrays:
            return arrays
        xp, flat = self._host_flat(arrays)
        self.comm.Bcast(flat, root=0)
        return self._back(xp, flat, arrays)

    def allreduce_sum(self, arrays):
        if self.size == 1 or not arrays:
            return arrays
        xp, flat = self._host_flat(arrays)
        self.comm.Allreduce(self.MPI.IN_PLACE, flat, op=self.MPI.SUM)
        return self._back(xp, flat, arrays)

    def broadcast_object(self, obj):
        return self.comm.bcast(obj, root=0)

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        self.comm.Abort(int(code))
