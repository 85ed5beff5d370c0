"""Solver: Caffe's training loop (solver.cpp) around an update rule.

``Solver(param)`` takes a SolverParameter or a solver prototxt path. As in
Caffe, the random seed (``random_seed`` >= 0) is set before any net is built;
then the nets are built (``nets.py``).

``step(n)`` runs Caffe's Solver::Step: per iteration clear the param diffs,
tell the net the iteration (``Net.set_iteration``, ours: schedules such as
the weight-search temperature read it), test every ``test_interval`` (at 0
only with ``test_initialization``), call the callbacks' ``on_start``, forward+backward ``iter_size`` times (param diffs
accumulate), the loss is their float32 mean smoothed over ``average_loss``
iterations, display every ``display`` iterations, ``on_gradients_ready``,
``apply_update()`` (``update.py``), ``iter += 1``, snapshot every
``snapshot`` iterations (``snapshot.py``). With ``nan_effect`` "stop" or
"snapshot" (ours; "none", Caffe's, by default) a non-finite loss, gradient or
update stops training before it is applied (``divergence.py``). An action
"snapshot_and_stop" (ours, the CLI's SIGTERM default) snapshots, then stops
without a second snapshot after training. A subclass (``sgd.py``,
``adaptive.py``) gives the rule: ``compute_update_value``.

With several solvers (``parallel.world``: Caffe's solver count and rank),
only the root solver (rank 0) tests and writes snapshots, as in Caffe.
"""
import logging
import os
import time

import numpy as np

from ..core import backend
from ..core.blob import Blob
from ..formats import text
from ..parallel import world
from . import divergence
from .errors import SolverError, _check
from .nets import SolverNets, load_solver_param
from .testing import _g, log_net_outputs, run_test
from .update import ParamUpdate

log = logging.getLogger("pycaffe_lowbit")


class _Callback:
    def __init__(self, on_start, on_gradients_ready):
        self.on_start = on_start
        self.on_gradients_ready = on_gradients_ready


class Solver(SolverNets, ParamUpdate):
    """Caffe's Solver. Subclasses implement ``compute_update_value``."""

    type = None

    def __init__(self, param):
        self.param = load_solver_param(param)
        self.callbacks = []
        self.iter = 0
        self.current_step = 0
        self.losses = []
        self.smoothed_loss = 0.0
        self.requested_early_exit = False
        self.action_request = None      # callable -> "stop" | "snapshot" | "none"
        self.last_snapshot = None       # the state of the last complete snapshot
        self.nan_effect = "none"        # "stop" | "snapshot" | "none": divergence.py
        self.diverged = None            # why training stopped non-finite, if it did
        self._stopped_with_snapshot = False
        self.history = []
        self._init()

    # -- construction ---------------------------------------------------------
    def _init(self):
        p = self.param
        log.info("Initializing solver from parameters: \n%s", text.format_text(p).rstrip("\n"))
        _check(p.average_loss >= 1, "average_loss should be non-negative (>= 1), got %d"
               % p.average_loss)
        _check(p.iter_size >= 1, "iter_size must be >= 1, got %d" % p.iter_size)
        self._check_snapshot_write_permissions()
        if p.random_seed >= 0:
            backend.set_random_seed(p.random_seed)
        self.net = self._init_train_net()
        self._load_weights(self.net)
        self.test_nets = self._init_test_nets()
        self.iter = 0
        self.current_step = 0
        self.pre_solve()
        log.info("Solver scaffolding done.")

    def _check_snapshot_write_permissions(self):
        p = self.param
        if not p.snapshot or not world.root_solver():   # the root writes snapshots
            return
        _check(p.HasField("snapshot_prefix"),
               "In solver params, snapshot is specified but snapshot_prefix is not")
        probe = p.snapshot_prefix + ".tempfile"
        try:
            with open(probe, "w"):
                pass
            os.remove(probe)
        except OSError:
            raise SolverError("Cannot write to snapshot prefix '%s'.  Make sure that the "
                              "directory exists and is writable." % p.snapshot_prefix) \
                from None

    def pre_solve(self):
        """Allocate the history: one zero blob per learnable param."""
        self.history = [self._zeros_like(p) for p in self.net.learnable_params]

    @staticmethod
    def _zeros_like(blob):
        return Blob(blob.shape, dtype=blob.dtype, xp=blob.xp)

    # -- pycaffe surface --------------------------------------------------------
    def add_callback(self, on_start, on_gradients_ready=None):
        """pycaffe's ``add_callback(on_start, on_gradients_ready)`` (two
        callables), or one object with ``on_start()`` and ``on_gradients_ready()``."""
        if on_gradients_ready is None:
            obj = on_start
            if not (hasattr(obj, "on_start") and hasattr(obj, "on_gradients_ready")):
                raise TypeError("add_callback needs (on_start, on_gradients_ready) callables "
                                "or an object with on_start() and on_gradients_ready()")
            self.callbacks.append(obj)
        else:
            self.callbacks.append(_Callback(on_start, on_gradients_ready))

    def share_weights(self, net):
        """pycaffe's ``solver.share_weights(net)``: ``net`` uses the train net's weights."""
        net.share_with(self.net)

    def snapshot(self):
        """Write the model and solver state; returns the model path."""
        from .snapshot import snapshot
        return snapshot(self)

    def restore(self, state_file):
        """Resume from a .solverstate (or .solverstate.h5)."""
        from .snapshot import restore
        restore(self, state_file)

    # -- the loop ---------------------------------------------------------------
    def requested_action(self):
        """Caffe's GetRequestedAction: ``action_request()`` if set (e.g. the CLI's
        signal handler), as "stop", "snapshot" or "none"."""
        if self.action_request is None:
            return "none"
        action = self.action_request()
        action = {0: "none", 1: "stop", 2: "snapshot", None: "none"}.get(action, action)  # SolverAction
        action = str(action).lower()
        if action not in ("stop", "snapshot", "none", "snapshot_and_stop"):
            raise SolverError("action_request returned %r; expected 'stop', 'snapshot', "
                              "'snapshot_and_stop' or 'none'" % (action,))
        return action

    def solve(self, resume_file=None):
        """Caffe's Solver::Solve: optionally restore, step to max_iter, snapshot
        after training, a final display forward and test."""
        p = self.param
        log.info("Solving %s", self.net.name)
        log.info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        self._stopped_with_snapshot = False
        if resume_file:
            log.info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        self.step(p.max_iter - self.iter)
        if self.diverged:               # keep the last finite snapshot: write nothing
            log.info("Optimization stopped: training diverged.")
            return
        if (p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0)
                and not self._stopped_with_snapshot and world.root_solver()):
            self.snapshot()
        if self.requested_early_exit:
            log.info("Optimization stopped early.")
            return
        if p.display and self.iter % p.display == 0:
            loss = np.float32(self.net.forward_prefilled())
            self._update_smoothed_loss(loss, start_iter, p.average_loss)
            log.info("Iteration %d, loss = %s", self.iter, _g(self.smoothed_loss))
        if p.test_interval and self.iter % p.test_interval == 0 and world.root_solver():
            self.test_all()
        log.info("Optimization Done.")

    def step(self, iters):
        """Run ``iters`` iterations (Caffe's Solver::Step)."""
        p = self.param
        self.diverged = None
        start_iter = self.iter
        stop_iter = self.iter + int(iters)
        average_loss = p.average_loss
        self.losses = []
        self.smoothed_loss = 0.0
        timer = time.perf_counter()
        iterations_last = self.iter
        while self.iter < stop_iter:
            self.net.clear_param_diffs()
            self.net.set_iteration(self.iter)
            if (p.test_interval and self.iter % p.test_interval == 0
                    and (self.iter > 0 or p.test_initialization) and world.root_solver()):
                self.test_all()
                if self.requested_early_exit:
                    break
            for cb in self.callbacks:
                cb.on_start()
            display = bool(p.display) and self.iter % p.display == 0
            self.net.debug_info = display and p.debug_info
            loss = np.float32(0)
            for _ in range(p.iter_size):
                loss = np.float32(loss + np.float32(self.net.forward_backward()))
            loss = np.float32(loss / np.float32(p.iter_size))
            self._update_smoothed_loss(loss, start_iter, average_loss)
            if display:
                # Caffe's CPU timer counts whole milliseconds; rates in float.
                lapse = np.float32(int((time.perf_counter() - timer) * 1000) / 1000.0)
                per_s = np.float32(self.iter - iterations_last) / (lapse if lapse else 1)
                log.info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s", self.iter,
                         _g(per_s), _g(lapse), p.display, _g(self.smoothed_loss))
                timer = time.perf_counter()
                iterations_last = self.iter
                log_net_outputs(self.net, "Train", None)
            for cb in self.callbacks:
                cb.on_gradients_ready()
            if self.nan_effect != "none":
                reason = divergence.check_before_update(self, loss)
                if reason:
                    divergence.diverged(self, reason)
                    break
            self.apply_update()
            if self.diverged:           # the update itself was not finite: not applied
                break
            self.iter += 1
            request = self.requested_action()
            if (((p.snapshot and self.iter % p.snapshot == 0)
                 or request in ("snapshot", "snapshot_and_stop")) and world.root_solver()):
                self.snapshot()
            if request in ("stop", "snapshot_and_stop"):
                self._stopped_with_snapshot = request == "snapshot_and_stop"
                self.requested_early_exit = True
                break

    def _update_smoothed_loss(self, loss, start_iter, average_loss):
        loss = float(loss)
        if len(self.losses) < average_loss:
            self.losses.append(loss)
            size = len(self.losses)
            self.smoothed_loss = float(np.float32(
                (self.smoothed_loss * (size - 1) + loss) / size))
        else:
            idx = (self.iter - start_iter) % average_loss
            self.smoothed_loss = float(np.float32(
                self.smoothed_loss + (loss - self.losses[idx]) / average_loss))
            self.losses[idx] = loss

    # -- testing ----------------------------------------------------------------
    def test_all(self):
        for i in range(len(self.test_nets)):
            if self.requested_early_exit:
                break
            self.test(i)

    def test(self, test_net_id=0):
        """Run test net ``test_net_id`` for its ``test_iter`` batches and log the
        mean of each output (Caffe's Solver::Test); returns {name: mean}
        (one value per output element; a blob of n elements gives a list)."""
        return run_test(self, test_net_id)

