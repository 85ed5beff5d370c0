"""Joining the process world for ``lowbit-caffe train`` (and scripts).

``join_world()``: the communicator of this process (``MPIComm`` when started by
``mpirun -np N`` with N > 1, else ``LocalComm``), with Caffe's solver count,
rank and multiprocess flag set from it. Call it before the solver is built:
the Data layers read the rank and count when they are set up.

``attach(solver, comm)``: broadcast rank 0's params (after any restore) and
install the gradient all-reduce (``DataParallel``); nothing for one process.

``guard(comm, log)``: a failure on one rank of several is logged with the rank
and ends the whole world (``comm.abort(1)``), so the other ranks do not wait
forever in a collective and ``mpirun`` exits non-zero.

``device_for_rank(gpu, rank, size)``: the GPU of this rank for ``--gpu``.
"""
import contextlib

from .sync import DataParallel, use_world, world_communicator


def join_world():
    comm = world_communicator()
    use_world(comm)
    return comm


def attach(solver, comm):
    if comm.size == 1:
        return None
    sync = DataParallel(solver, comm)
    sync.bcast()
    solver.add_callback(sync)
    return sync


@contextlib.contextmanager
def guard(comm, log):
    if comm.size == 1:
        yield
        return
    try:
        yield
    except BaseException as exc:
        log.error("Solver rank %d of %d failed, stopping all ranks: %s: %s", comm.rank,
                  comm.size, type(exc).__name__, exc)
        comm.abort(1)


def device_for_rank(gpu, rank, size):
    """``--gpu`` for one rank: a single id (or "" for CPU) as given; a list of
    ids needs one per rank (rank r takes the r-th; one process per GPU under
    mpirun, gradients reduced over MPI: unrun, no GPU was available)."""
    ids = [g for g in gpu.split(",") if g] if gpu and gpu != "all" else []
    if len(ids) <= 1:
        return gpu
    if size != len(ids):
        raise ValueError(
            "--gpu %s: several GPUs in one process are not supported (NCCL is not yet "
            "verified on GPUs); start one process per GPU: mpirun -np %d lowbit-caffe "
            "train --gpu %s ... (rank r uses the r-th id)" % (gpu, len(ids), gpu))
    return ids[rank]
