"""Training curves in TensorBoard: a solver callback writing scalar events
(``lowbit-caffe train --tensorboard DIR``; for pycaffe scripts
``solver.add_callback(TensorBoard(solver, DIR))``).

Scalars, each at the solver's iteration as its step:

    train/loss        every iteration: the loss Caffe displays ("Iteration N,
                      loss = ..."), smoothed over ``average_loss`` iterations
    train/lr          every iteration: the rate the update applies
    test/NAME         every test pass of test net #0: the mean of output NAME
                      (NAME/j for element j of an output with several);
                      testK/NAME for test net #K

The events are written by tensorboardX (``pip install
'pycaffe_lowbit[tensorboard]'``) into DIR, as ``tensorboard --logdir DIR``
reads them; with several solvers (MPI) only rank 0 writes, as only it tests.
"""
from ..parallel import world

INSTALL_HINT = "pip install 'pycaffe_lowbit[tensorboard]'"


def require():
    """tensorboardX's SummaryWriter class; ImportError naming the extra when
    tensorboardX is not installed."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ImportError("TensorBoard events need tensorboardX: %s" % INSTALL_HINT) from None
    return SummaryWriter


def summary_writer(logdir):
    """A tensorboardX SummaryWriter writing into folder ``logdir``."""
    return require()(logdir=str(logdir))


def _tag(test_net_id, name):
    return ("test/" if test_net_id == 0 else "test%d/" % test_net_id) + name


class TensorBoard:
    """A pycaffe solver callback (``on_start``, ``on_gradients_ready``) that
    also listens to the test passes (``on_test``). ``writer``: anything with
    tensorboardX's ``add_scalar(tag, value, step)``, ``flush`` and ``close``
    (default: a SummaryWriter on ``logdir``). Use it as a context manager, or
    ``close()`` it, to flush the last events."""

    def __init__(self, solver, logdir=None, writer=None):
        if writer is None and logdir is None:
            raise ValueError("TensorBoard needs a logdir (or a writer)")
        self.solver = solver
        self.active = world.root_solver()
        self.writer = writer if writer is not None or not self.active else summary_writer(logdir)

    def on_start(self):
        pass

    def on_gradients_ready(self):
        if not self.active:
            return
        solver = self.solver
        self.writer.add_scalar("train/loss", float(solver.smoothed_loss), solver.iter)
        self.writer.add_scalar("train/lr", float(solver.get_learning_rate()), solver.iter)

    def on_test(self, test_net_id, scores):
        """``scores``: {output name: mean, or list of means per element}."""
        if not self.active:
            return
        for name, value in scores.items():
            if isinstance(value, (list, tuple)):
                for j, v in enumerate(value):
                    self.writer.add_scalar(_tag(test_net_id, "%s/%d" % (name, j)), float(v),
                                           self.solver.iter)
            else:
                self.writer.add_scalar(_tag(test_net_id, name), float(value), self.solver.iter)

    def flush(self):
        if self.writer is not None:
            self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
