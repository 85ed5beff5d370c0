"""Solver: Caffe's training loop (solver.cpp) around an update rule.

``Solver(param)`` takes a SolverParameter or a solver prototxt path. As in Caffe:

* the random seed (``random_seed`` >= 0) is set before any net is built;
* the train net comes from exactly one of ``net``, ``net_param``, ``train_net``,
  ``train_net_param``; its NetState is phase TRAIN merged with the net's own
  state and ``train_state``;
* test nets: ``test_net_param`` entries, then ``test_net`` files, then the
  generic ``net``/``net_param`` for the remaining ``test_iter`` entries; each
  phase TEST merged with ``test_state[i]``; they share the train net's weights;
* ``weights`` (comma-separated files) are copied into every net.

``step(n)`` runs Caffe's Solver::Step: per iteration clear the param diffs,
tell the net the iteration (``Net.set_iteration``, ours: schedules such as
the weight-search temperature read it), test every ``test_interval`` (at 0 only with ``test_initialization``), call the
callbacks' ``on_start``, forward+backward ``iter_size`` times (param diffs
accumulate), the loss is their float32 mean smoothed over ``average_loss``
iterations, display every ``display`` iterations, ``on_gradients_ready``,
``apply_update()``, ``iter += 1``, snapshot every ``snapshot`` iterations.

With several solvers (``parallel.world``: Caffe's solver count and rank),
only the root solver (rank 0) tests and writes snapshots, as in Caffe.

``apply_update()`` is SGDSolver::ApplyUpdate: rate from the lr policy (logged at
display iterations), gradient clipping to a global L2 norm ``clip_gradients``,
then per learnable param i: diff /= iter_size; regularization with
local_decay = weight_decay * decay_mult_i (L2: diff += local_decay * data,
L1: diff += local_decay * sign(data)); ``compute_update_value(i, rate)`` (the
subclass's rule, with local_rate = rate * lr_mult_i, writing the step into the
diff); finally data -= diff for every learnable param.
"""
import logging
import os
import time

import numpy as np

from .. import backend
from ..blob import Blob
from ..io import text
from ..parallel import world
from ..proto import caffe_pb2
from . import lr_policy
from .testing import _g, log_net_outputs, run_test

log = logging.getLogger("pycaffe_lowbit")

_TRAIN_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param")


class SolverError(ValueError):
    """A SolverParameter that Caffe's solver rejects (a failed CHECK)."""


def _check(condition, message):
    if not condition:
        raise SolverError(message)


def load_solver_param(param):
    """A SolverParameter (a copy, legacy fields upgraded) from a path or message."""
    from ..io import upgrade
    if isinstance(param, caffe_pb2.SolverParameter):
        copy = caffe_pb2.SolverParameter()
        copy.CopyFrom(param)
        if upgrade.solver_needs_upgrade(copy):
            copy = upgrade.upgrade_solver(copy, "<SolverParameter>")
        return copy
    if isinstance(param, (str, os.PathLike)):
        return text.read_solver_param(os.fspath(param))
    raise TypeError("a solver needs a SolverParameter or a solver prototxt path, got %r"
                    % type(param).__name__)


class _Callback:
    def __init__(self, on_start, on_gradients_ready):
        self.on_start = on_start
        self.on_gradients_ready = on_gradients_ready


class Solver:
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

    def _load_weights(self, net):
        """Caffe's LoadNetWeights: every ``weights`` file (comma-separated
        entries too, blanks around names trimmed) copied into ``net`` by layer
        name, in order."""
        for weights in self.param.weights:
            for path in weights.split(","):
                log.info("Finetuning from %s", path.strip())
                net.copy_from(path.strip())

    def _net_class(self):
        from ..pycaffe import Net
        return Net

    def _build_net(self, net_param, phase, state):
        """A Net of ``net_param`` with Caffe's NetState merge: phase, then the
        net's own state, then the solver's train_state/test_state."""
        merged = caffe_pb2.NetState()
        merged.phase = phase
        merged.MergeFrom(net_param.state)
        if state is not None:
            merged.MergeFrom(state)
        param = caffe_pb2.NetParameter()
        param.CopyFrom(net_param)
        param.state.CopyFrom(merged)
        return self._net_class()(param, merged.phase, level=merged.level,
                                 stages=list(merged.stage))

    @staticmethod
    def _read_net(path):
        return text.read_net_param(path)

    def _init_train_net(self):
        p = self.param
        given = [f for f in _TRAIN_NET_FIELDS
                 if (p.HasField(f) if f.endswith("_param") else bool(getattr(p, f)))]
        _check(given, "SolverParameter must specify a train net using one of these "
                      "fields: " + ", ".join(_TRAIN_NET_FIELDS))
        _check(len(given) == 1, "SolverParameter must not contain more than one of these "
                                "fields specifying a train_net: " + ", ".join(_TRAIN_NET_FIELDS))
        field = given[0]
        if field == "train_net_param":
            log.info("Creating training net specified in train_net_param.")
            net_param = p.train_net_param
        elif field == "train_net":
            log.info("Creating training net from train_net file: %s", p.train_net)
            net_param = self._read_net(p.train_net)
        elif field == "net_param":
            log.info("Creating training net specified in net_param.")
            net_param = p.net_param
        else:
            log.info("Creating training net from net file: %s", p.net)
            net_param = self._read_net(p.net)
        return self._build_net(net_param, caffe_pb2.TRAIN,
                               p.train_state if p.HasField("train_state") else None)

    def _init_test_nets(self):
        p = self.param
        has_net_param = p.HasField("net_param")
        has_net_file = bool(p.net)
        num_generic = int(has_net_param) + int(has_net_file)
        _check(num_generic <= 1, "Both net_param and net_file may not be specified.")
        num_test_nets = len(p.test_net_param) + len(p.test_net)
        if num_generic:
            _check(len(p.test_iter) >= num_test_nets,
                   "test_iter must be specified for each test network.")
        else:
            _check(len(p.test_iter) == num_test_nets,
                   "test_iter must be specified for each test network.")
        num_generic_instances = len(p.test_iter) - num_test_nets
        num_instances = num_test_nets + num_generic_instances
        if len(p.test_state):
            _check(len(p.test_state) == num_instances,
                   "test_state must be unspecified or specified once per test net.")
        if num_instances:
            _check(p.test_interval > 0, "test_interval must be > 0 when there are test nets, "
                                        "got %d" % p.test_interval)
        sources = []
        for i, net_param in enumerate(p.test_net_param):
            sources.append(("test_net_param", net_param))
        for path in p.test_net:
            sources.append(("test_net file: " + path, self._read_net(path)))
        if num_generic_instances:
            generic = p.net_param if has_net_param else self._read_net(p.net)
            what = "net_param" if has_net_param else "net file: " + p.net
            sources.extend([(what, generic)] * num_generic_instances)
        nets = []
        for i, (what, net_param) in enumerate(sources):
            log.info("Creating test net (#%d) specified by %s", i, what)
            net = self._build_net(net_param, caffe_pb2.TEST,
                                  p.test_state[i] if len(p.test_state) else None)
            self._load_weights(net)
            net.share_with(self.net)
            nets.append(net)
        return nets

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
        if action not in ("stop", "snapshot", "none"):
            raise SolverError("action_request returned %r; expected 'stop', 'snapshot' "
                              "or 'none'" % (action,))
        return action

    def solve(self, resume_file=None):
        """Caffe's Solver::Solve: optionally restore, step to max_iter, snapshot
        after training, a final display forward and test."""
        p = self.param
        log.info("Solving %s", self.net.name)
        log.info("Learning Rate Policy: %s", p.lr_policy)
        self.requested_early_exit = False
        if resume_file:
            log.info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        self.step(p.max_iter - self.iter)
        if (p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0)
                and world.root_solver()):
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
            self.apply_update()
            self.iter += 1
            request = self.requested_action()
            if (((p.snapshot and self.iter % p.snapshot == 0) or request == "snapshot")
                    and world.root_solver()):
                self.snapshot()
            if request == "stop":
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

    # -- the update -------------------------------------------------------------
    def get_learning_rate(self):
        """The current rate; advances ``current_step`` (step, multistep)."""
        self.current_step = lr_policy.advance_step(self.param, self.iter, self.current_step)
        return lr_policy.learning_rate(self.param, self.iter, self.current_step)

    def apply_update(self):
        """SGDSolver::ApplyUpdate (see the module docstring)."""
        rate = self.get_learning_rate()
        p = self.param
        if p.display and self.iter % p.display == 0:
            log.info("Iteration %d, lr = %s", self.iter, _g(np.float32(rate)))
        self.clip_gradients()
        for i in range(len(self.net.learnable_params)):
            self.normalize(i)
            self.regularize(i)
            self.compute_update_value(i, rate)
        self.update_params()

    def clip_gradients(self):
        clip = self.param.clip_gradients
        if clip < 0:
            return
        params = self.net.learnable_params
        sumsq = 0.0
        for blob in params:
            d = blob.diff
            sumsq += float((d.astype(np.float64) ** 2).sum()) if d.dtype == np.float32 \
                else float((d * d).sum())
        l2norm = float(np.sqrt(sumsq))
        if l2norm > clip:
            scale = clip / l2norm
            log.info("Gradient clipping: scaling down gradients (L2 norm %s > %s) by "
                     "scale factor %s", _g(np.float32(l2norm)), _g(np.float32(clip)),
                     _g(np.float32(scale)))
            for blob in params:
                blob.diff *= blob.dtype.type(scale)

    def normalize(self, param_id):
        if self.param.iter_size == 1:
            return
        blob = self.net.learnable_params[param_id]
        blob.diff *= blob.dtype.type(1.0 / self.param.iter_size)

    def regularize(self, param_id):
        blob = self.net.learnable_params[param_id]
        local_decay = self.param.weight_decay * self.net.params_weight_decay[param_id]
        if not local_decay:
            return
        kind = self.param.regularization_type
        decay = blob.dtype.type(local_decay)
        if kind == "L2":
            blob.diff += decay * blob.data
        elif kind == "L1":
            blob.diff += decay * blob.xp.sign(blob.data)
        else:
            raise SolverError("Unknown regularization type: %s (known: L2, L1)" % kind)

    def local_rate(self, param_id, rate):
        return rate * self.net.params_lr[param_id]

    def compute_update_value(self, param_id, rate):
        raise NotImplementedError

    def update_params(self):
        """Net::Update: data -= diff for every learnable param (in place, so
        every net sharing the arrays sees it); then, for a param whose ParamSpec
        has ``clip_data`` c > 0 (ours, off by default), data = clip(data, -c, c)."""
        for blob, clip in zip(self.net.learnable_params, self.net.params_clip_data):
            blob.data -= blob.diff
            if clip > 0:
                c = blob.dtype.type(clip)
                blob.xp.clip(blob.data, -c, c, out=blob.data)
