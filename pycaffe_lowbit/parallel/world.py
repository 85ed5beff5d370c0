"""Caffe's global multi-solver state: ``solver_count``, ``solver_rank``,
``multiprocess`` (``Caffe::set_solver_count`` ... in Caffe), read by the
solver (only the root solver, rank 0, tests, snapshots and logs) and by the
Data layer (rank r of N keeps the records whose stream offset is r mod N).

Non-root ranks drop the library's INFO records (Caffe's
``LOG_IF(INFO, Caffe::root_solver())``); warnings and errors still show.

``mpi_world_size()`` reads the environment ``mpirun`` gives its processes
(Open MPI's OMPI_COMM_WORLD_SIZE/RANK, MPICH/Hydra's PMI_SIZE/PMI_RANK) without
importing mpi4py: (size, rank), or (1, 0) outside mpirun.
"""
import logging
import os

_state = {"count": 1, "rank": 0, "multiprocess": False}

_ENV = (("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"), ("PMI_SIZE", "PMI_RANK"),
        ("PMIX_SIZE", "PMIX_RANK"))


def set_solver_count(count):
    count = int(count)
    if count < 1:
        raise ValueError("solver count must be >= 1, got %d" % count)
    _state["count"] = count


def set_solver_rank(rank):
    rank = int(rank)
    if rank < 0:
        raise ValueError("solver rank must be >= 0, got %d" % rank)
    _state["rank"] = rank


def set_multiprocess(flag):
    _state["multiprocess"] = bool(flag)


def solver_count():
    return _state["count"]


def solver_rank():
    return _state["rank"]


def multiprocess():
    return _state["multiprocess"]


def root_solver():
    """True on rank 0 (Caffe's ``Caffe::root_solver()``)."""
    return _state["rank"] == 0


def mpi_world_size(environ=None):
    """(size, rank) of the MPI world this process was started in, or (1, 0)."""
    environ = os.environ if environ is None else environ
    for size_key, rank_key in _ENV:
        if size_key in environ:
            return int(environ[size_key]), int(environ.get(rank_key, 0))
    return 1, 0


class _RootOnlyInfo(logging.Filter):
    def filter(self, record):
        return _state["rank"] == 0 or record.levelno > logging.INFO


logging.getLogger("pycaffe_lowbit").addFilter(_RootOnlyInfo())
