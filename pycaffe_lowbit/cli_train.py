"""``lowbit-caffe train``: train or fine-tune from a solver file, as ``caffe train``.

    lowbit-caffe train --solver S [--weights W[,W2] | --snapshot S.solverstate]
                       [--gpu 0|0,1|all] [--level N] [--stage a,b]
                       [--sigint_effect stop|snapshot|none] [--sighup_effect ...]
                       [--set FIELD=VALUE ...]

As Caffe: ``--weights`` replaces the solver file's ``weights`` and is copied
into the train and test nets ("Finetuning from ..."); ``--snapshot`` resumes
from a solver state; both together is an error. ``--level``/``--stage`` set the
solver's ``train_state``. On SIGINT (default: stop) or SIGHUP (default:
snapshot) the solver snapshots and/or stops after the current iteration.
"""
import signal

EFFECTS = ("stop", "snapshot", "none")


class SignalActions:
    """Turns SIGINT/SIGHUP into the solver's requested action, as Caffe's
    SignalHandler: the signal is remembered and read once per iteration."""

    def __init__(self, sigint_effect="stop", sighup_effect="snapshot"):
        for name, effect in (("sigint_effect", sigint_effect),
                             ("sighup_effect", sighup_effect)):
            if effect not in EFFECTS:
                raise ValueError("--%s must be one of %s, got %r"
                                 % (name, ", ".join(EFFECTS), effect))
        self.effects = {signal.SIGINT: sigint_effect}
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
        """The action for the solver: 'stop', 'snapshot' or 'none'."""
        action = "none"
        while self.pending:
            effect = self.effects[self.pending.pop(0)]
            if effect == "stop":
                return "stop"
            if effect == "snapshot":
                action = "snapshot"
        return action


def cmd_train(args, log):
    from .cli import _use_device
    from .io.text import read_solver_param
    from .solvers import get_solver
    if not args.solver:
        raise SystemExit("lowbit-caffe train: need a solver definition to train (-solver)")
    if args.snapshot and args.weights:
        raise SystemExit("lowbit-caffe train: give a snapshot to resume training or "
                         "weights to finetune but not both")
    param = read_solver_param(args.solver)
    param.train_state.level = args.level
    param.train_state.stage.extend(s for s in args.stage.split(",") if s)
    if getattr(args, "set", None):
        from .overrides import apply_solver_overrides
        apply_solver_overrides(param, args.set)
    if args.weights:
        del param.weights[:]
        param.weights.append(args.weights)
    _use_device(args.gpu, log)
    actions = SignalActions(args.sigint_effect, args.sighup_effect).install()
    try:
        solver = get_solver(param)
        solver.action_request = actions
        if args.snapshot:
            log.info("Resuming from %s", args.snapshot)
            solver.restore(args.snapshot)
        log.info("Starting Optimization")
        solver.solve()
    finally:
        actions.restore()
    log.info("Optimization Done.")
    return 0
