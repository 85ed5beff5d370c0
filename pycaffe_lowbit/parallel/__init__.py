"""Data-parallel training: N solvers, one per process, averaging gradients.

* ``world``: Caffe's global solver count / rank / multiprocess flags, and the
  detection of an MPI world started by ``mpirun``.
* ``comm``: the communicator interface and the single-process ``LocalComm``.
* ``mpi``: ``MPIComm`` (mpi4py, CPU buffers). ``nccl``: ``NCCLComm`` (CuPy's
  NCCL bindings; unrun: no GPU was available when it was written) and
  pycaffe's ``NCCL`` class.
* ``sync``: ``DataParallel``, the solver callback that broadcasts the params
  from rank 0 and all-reduces the gradients before each update.
"""
from .world import (set_solver_count, set_solver_rank, set_multiprocess, solver_count,
                    solver_rank, multiprocess, root_solver, mpi_world_size)
from .comm import Communicator, LocalComm
from .sync import DataParallel, world_communicator

__all__ = ["set_solver_count", "set_solver_rank", "set_multiprocess", "solver_count",
           "solver_rank", "multiprocess", "root_solver", "mpi_world_size", "Communicator",
           "LocalComm", "DataParallel", "world_communicator"]
