"""``lowbit-caffe train``: train or fine-tune from a solver file, as ``caffe train``.

    lowbit-caffe train --solver S [--weights W[,W2] | --snapshot S.solverstate]
                       [--gpu 0|0,1|all] [--level N] [--stage a,b]
                       [--sigint_effect stop|snapshot|none] [--sighup_effect ...]
                       [--sigterm_effect snapshot_and_stop|stop|snapshot|none]
                       [--nan_effect stop|snapshot|none]
                       [--set FIELD=VALUE ...] [--progress auto|on|off]
                       [--tensorboard DIR]

As Caffe: ``--weights`` replaces the solver file's ``weights`` and is copied
into the train and test nets ("Finetuning from ..."); ``--snapshot`` resumes
from a solver state; both together is an error. ``--level``/``--stage`` set the
solver's ``train_state``. On SIGINT (default: stop) or SIGHUP (default:
snapshot) the solver snapshots and/or stops after the current iteration; a
stop still takes the snapshot after training (``snapshot_after_train``).
Ours: SIGTERM (a cluster scheduler's notice before preemption; default
``snapshot_and_stop``) snapshots and stops, whatever ``snapshot_after_train``
says, so the job resumes with ``--snapshot``; the effects of SIGINT/SIGHUP
may be ``snapshot_and_stop`` too.

Faults (ours): when the loss, a gradient or an update goes non-finite,
``--nan_effect`` stop (default) or snapshot ends training with one error
line (iteration, where it began, the last snapshot) and exit code 1; none
trains on as Caffe does (``solvers/divergence.py``). A snapshot that cannot
be written (a full disk) is one error line naming the file and the OS's
reason, then one naming the last complete snapshot, and exit code 1.

Before any net is built, the files the solver and the flags name are checked:
each missing one is an error line naming the solver file and the field (or
the flag), and the command exits with 1. The ``snapshot_prefix`` folder is
checked whenever a snapshot will be written (Caffe checks it up front only
with ``snapshot`` > 0). ``--progress``: see ``progress.py``. ``--tensorboard
DIR`` writes the train loss, the rate and every test output as TensorBoard
scalars into DIR (``logs/tensorboard.py``; needs tensorboardX).

Started by ``mpirun -np N``, the N processes train data-parallel (see
``parallel``): each reads its share of the data with the solver's batch size,
gradients are averaged before each update, rank 0 logs, tests and snapshots.
``--gpu 0,1`` needs one process per id (``mpirun -np 2``; rank r uses the
r-th); several GPUs in one process are an error.
"""
import os
import signal

from ..formats.text import read_solver_param
from ..logs import progress, tensorboard
from ..parallel import launch
from ..solvers import get_solver
from ..solvers.divergence import NAN_EFFECTS
from ..solvers.snapshot import SnapshotWriteError
from .common import Command, add_caffe_flags, flag, gpu_from_solver, use_device
from .overrides import apply_solver_overrides, parse_override

EFFECTS = ("stop", "snapshot", "none", "snapshot_and_stop")


class SignalActions:
    """Turns SIGINT/SIGHUP/SIGTERM into the solver's requested action, as
    Caffe's SignalHandler: the signal is remembered and read once per iteration."""

    def __init__(self, sigint_effect="stop", sighup_effect="snapshot",
                 sigterm_effect="snapshot_and_stop"):
        for name, effect in (("sigint_effect", sigint_effect),
                             ("sighup_effect", sighup_effect),
                             ("sigterm_effect", sigterm_effect)):
            if effect not in EFFECTS:
                raise ValueError("--%s must be one of %s, got %r"
                                 % (name, ", ".join(EFFECTS), effect))
        self.effects = {signal.SIGINT: sigint_effect, signal.SIGTERM: sigterm_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.pending = []
        self.previous = {}

    def install(self):
        for signum in self.effects:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum, frame):
        self.pending.append(signum)

    def __call__(self):
        """The action for the solver: 'stop', 'snapshot_and_stop', 'snapshot'
        or 'none' (a stopping signal first, as Caffe reads SIGINT first)."""
        action = "none"
        while self.pending:
            effect = self.effects[self.pending.pop(0)]
            if effect in ("stop", "snapshot_and_stop"):
                return effect
            if effect == "snapshot":
                action = "snapshot"
        return action


def _missing(path):
    """Why ``path`` cannot be read as a file ("" when it can)."""
    if os.path.isdir(path):
        return 'is a folder, not a file: "%s"' % path
    if not os.path.isfile(path):
        return 'no such file "%s"' % path
    return ""


def _snapshot_folder_problem(param):
    """Why the snapshots of ``param`` could not be written ("" when they can).

    Caffe finds out at the first snapshot (or, with ``snapshot`` > 0, when it
    probes the prefix at start-up); we check up front whenever training will
    write one: every ``snapshot`` iterations or after training."""
    if not (param.snapshot > 0 or param.snapshot_after_train):
        return ""
    folder = os.path.dirname(param.snapshot_prefix) or "."
    where = "%s_iter_<N>.caffemodel" % param.snapshot_prefix
    if not os.path.isdir(folder):
        return 'no such folder "%s" (snapshots go to %s)' % (folder, where)
    if not os.access(folder, os.W_OK | os.X_OK):
        return 'folder "%s" is not writable (snapshots go to %s)' % (folder, where)
    return ""


def input_problems(param, solver_file, skip=()):
    """One line per file the solver names that is missing, each naming the
    solver file and the field (``solver.prototxt: field "net": no such file
    "x.prototxt"``); fields in ``skip`` are not checked."""
    named = [("net", param.net), ("train_net", param.train_net)]
    named += [("test_net", path) for path in param.test_net]
    named += [("weights", path.strip()) for entry in param.weights
              for path in entry.split(",")]
    problems = ['%s: field "%s": %s' % (solver_file, field, _missing(path))
                for field, path in named if path and field not in skip and _missing(path)]
    folder = "" if "snapshot_prefix" in skip else _snapshot_folder_problem(param)
    if folder:
        problems.append('%s: field "snapshot_prefix": %s' % (solver_file, folder))
    return problems


def _flag_problems(args):
    paths = [("--weights", path.strip()) for path in args.weights.split(",") if path.strip()]
    if args.snapshot:
        paths.append(("--snapshot", args.snapshot))
    return ["%s: %s" % (flag, _missing(path)) for flag, path in paths if _missing(path)]


def _overridden_fields(overrides):
    return {parse_override(text).steps[0][0] for text in overrides}


def load_train_param(args):
    """The solver's parameters with the flags and ``--set`` overrides applied,
    and the lines saying which named files are missing (empty when none)."""
    param = read_solver_param(args.solver)
    param.train_state.level = args.level
    param.train_state.stage.extend(args.stage.split(","))   # "" gives stage "", as Caffe
    overrides = getattr(args, "set", None) or []
    skip = _overridden_fields(overrides)
    if args.weights:
        skip.add("weights")
    # Before the overrides (which read the net files for layer[...] paths), and
    # after them for what they changed.
    problems = input_problems(param, args.solver, skip) + _flag_problems(args)
    if problems:
        return param, problems
    if overrides:
        apply_solver_overrides(param, overrides)
    if args.weights:
        del param.weights[:]
        param.weights.append(args.weights)
    return param, input_problems(param, args.solver)


def cmd_train(args, log):
    if not args.solver:
        raise SystemExit("lowbit-caffe train: need a solver definition to train (-solver)")
    if args.snapshot and args.weights:
        raise SystemExit("lowbit-caffe train: give a snapshot to resume training or "
                         "weights to finetune but not both")
    param, problems = load_train_param(args)
    if getattr(args, "tensorboard", ""):
        try:
            tensorboard.require()
        except ImportError as exc:
            problems.append("--tensorboard: %s" % exc)
    for line in problems:
        log.error("%s", line)
    if problems:
        return 1
    comm = launch.join_world()
    gpu = gpu_from_solver(args.gpu, param)
    use_device(launch.device_for_rank(gpu, comm.rank, comm.size), log, training=True)
    if args.nan_effect not in NAN_EFFECTS:
        raise ValueError("--nan_effect must be one of %s, got %r"
                         % (", ".join(NAN_EFFECTS), args.nan_effect))
    actions = SignalActions(args.sigint_effect, args.sighup_effect,
                            args.sigterm_effect).install()
    board = None
    try:
        with launch.guard(comm, log):
            solver = get_solver(param)
            solver.action_request = actions
            solver.nan_effect = args.nan_effect
            if args.snapshot:
                log.info("Resuming from %s", args.snapshot)
                solver.restore(args.snapshot)
            launch.attach(solver, comm)
            if getattr(args, "tensorboard", ""):
                board = tensorboard.TensorBoard(solver, args.tensorboard)
                solver.add_callback(board)
            log.info("Starting Optimization")
            with progress.training(solver, getattr(args, "progress", "off")):
                solver.solve()
    except SnapshotWriteError as exc:
        log.error("%s", exc)
        log.error("Last good snapshot: %s", "%s (resume with --snapshot %s)"
                  % (exc.last_good, exc.last_good) if exc.last_good else "none written")
        return 1
    finally:
        actions.restore()
        if board is not None:
            board.close()
    if solver.diverged:
        return 1
    log.info("Optimization Done.")
    return 0


def _train_flags(p):
    add_caffe_flags(p)
    flag(p, "tensorboard", default="", metavar="DIR",
         help="write the train loss, the learning rate and each test output as "
              "TensorBoard scalars into DIR (needs tensorboardX)")


COMMANDS = {"train": Command(cmd_train, "train or finetune a model", _train_flags)}
