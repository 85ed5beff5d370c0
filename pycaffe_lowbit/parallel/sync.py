"""``DataParallel``: the solver hook of data-parallel training (Caffe's NCCL
class in parallel.cpp, with any communicator).

Each rank runs its own solver on its own share of the data (the Data layer
strides through the database by ``world.solver_rank``/``solver_count``), with
the solver's batch size per rank. Per iteration, after the ``iter_size``
forward/backward passes and before ``ApplyUpdate``, ``on_gradients_ready``
replaces every learnable param's diff g_r by

    g = (1 / N) * sum_r g_r        (one fused all-reduce over all diffs)

as Caffe does (the losses already divide by the per-rank batch, so the sum over
N ranks is scaled by 1/N). With N ranks of batch b each, the update is the one
of a single solver with batch N*b; clipping, iter_size normalization,
regularization and the rule then run on identical diffs and params on every
rank, so the params and the solver history stay equal everywhere.

``bcast()`` (at the start of training and after a restore) copies rank 0's
params to every rank. The host random generator (``backend.rng()``) is made
rank 0's at ``bcast()`` and again at the start of every iteration
(``on_start``; a small object broadcast): every rank then makes the same host
draws in the iteration, whatever rank 0 drew in between (its test passes), so
the SQ roulette selection (drawn from that generator, weighted by the
identical weights) is the same on every rank and equal to rank 0's, which is
the one a single solver with the same seed draws. (Dropout's host masks are
thus shared by the ranks too, each applied to its own records.) BatchNorm
statistics are not reduced: they stay local per rank, as in Caffe.
"""
from ..core import backend
from . import world
from .comm import LocalComm


def world_communicator():
    """The communicator of this process: ``MPIComm`` when started by
    ``mpirun`` with more than one process, else ``LocalComm``."""
    size, _ = world.mpi_world_size()
    if size > 1:
        from .mpi import MPIComm
        return MPIComm()
    return LocalComm()


def use_world(comm):
    """Set Caffe's solver count/rank/multiprocess from ``comm``."""
    world.set_solver_count(comm.size)
    world.set_solver_rank(comm.rank)
    world.set_multiprocess(comm.size > 1)


class DataParallel:
    """A solver callback (``solver.add_callback(DataParallel(solver, comm))``)."""

    def __init__(self, solver, comm):
        self.solver = solver
        self.comm = comm

    def _params(self):
        return [blob.data for blob in self.solver.net.learnable_params]

    def bcast(self):
        """Rank 0's params and random generator state on every rank."""
        self.comm.broadcast(self._params())
        self._share_rng()

    def _share_rng(self):
        gen = backend.rng()
        gen.bit_generator.state = self.comm.broadcast_object(gen.bit_generator.state)

    def on_start(self):
        if self.comm.size > 1:
            self._share_rng()

    def on_gradients_ready(self):
        if self.comm.size == 1:
            return
        diffs = [blob.diff for blob in self.solver.net.learnable_params]
        self.comm.allreduce_sum(diffs)
        for d in diffs:
            d *= d.dtype.type(1.0 / self.comm.size)

