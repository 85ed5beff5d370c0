"""What the commands share: gflags-style flags, Caffe's net and run flags,
loading a model with its ``--set`` overrides, and picking the device.

Every command module imports this one; this one imports no command.
A command is ``Command(run, help, add_flags)``: ``run(args, log)`` returns the
exit code, ``add_flags(parser)`` declares its arguments.
"""
import argparse
from collections import namedtuple

Command = namedtuple("Command", "run help add_flags")

_TRUE = ("true", "1", "yes", "t", "y")
_FALSE = ("false", "0", "no", "f", "n")


def flag(parser, name, **kwargs):
    """Add ``-name`` and ``--name`` (gflags spelling)."""
    parser.add_argument("-" + name, "--" + name, dest=name, **kwargs)


def bool_flag(parser, name, help_text):
    """A gflags boolean: -name, --name, --name=true|false, --noname.

    argparse looks an argument up whole before splitting at '=', so each
    ``--name=value`` spelling is an option string of its own (hidden in help)."""
    with_value = [p + name + "=" + v for p in ("-", "--") for v in _TRUE]
    off = [p + n for p in ("-", "--") for n in ["no" + name] + [name + "=" + v for v in _FALSE]]
    parser.add_argument("-" + name, "--" + name, dest=name, action="store_const", const=True,
                        default=False,
                        help=help_text + " (--%s=false or --no%s: off)" % (name, name))
    parser.add_argument(*with_value, dest=name, action="store_const", const=True,
                        help=argparse.SUPPRESS)
    parser.add_argument(*off, dest=name, action="store_const", const=False,
                        help=argparse.SUPPRESS)


def add_caffe_flags(p):
    """The flags of Caffe's train / test / time / device_query (caffe.cpp)."""
    flag(p, "model", help="the model definition protocol buffer text file")
    flag(p, "weights", default="",
         help="pretrained weights (.caffemodel or .h5), comma-separated to merge several")
    flag(p, "phase", default="", choices=["", "TRAIN", "TEST"],
         help="network phase (TRAIN or TEST); only used for time")
    flag(p, "level", type=int, default=0, help="network level")
    flag(p, "stage", default="", help="network stages, comma-separated")
    flag(p, "gpu", default="", help="GPU ids (e.g. 0 or 0,1 or all); CPU when unset")
    flag(p, "iterations", type=int, default=50, help="number of iterations to run")
    flag(p, "solver", default="", help="the solver definition protocol buffer text file")
    flag(p, "snapshot", default="", help="resume training from a .solverstate")
    flag(p, "sigint_effect", default="stop",
         help="action on SIGINT: snapshot, stop or none (default stop)")
    flag(p, "sighup_effect", default="snapshot",
         help="action on SIGHUP: snapshot, stop or none (default snapshot)")
    flag(p, "sigterm_effect", default="snapshot_and_stop",
         help="action on SIGTERM (a scheduler's preemption): snapshot_and_stop "
              "(default: resume later with --snapshot), stop, snapshot or none")
    flag(p, "nan_effect", default="stop",
         help="when the loss, a gradient or an update goes NaN/inf: stop (default; "
              "the update is not applied, the last snapshot is kept), snapshot (write "
              "the last finite weights, then stop) or none (Caffe: train on)")
    flag(p, "progress", default="auto", choices=["auto", "on", "off"],
         help="progress bar with ETA on stdout: auto (when stdout and stderr are "
              "terminals, so logs sent to a file stay pure glog lines), on, off")
    flag(p, "set", action="append", default=[], metavar="FIELD=VALUE",
         help="override a solver or layer field without editing the file "
              "(repeatable), e.g. 'layer[data].data_param.source=/data/lmdb'")


def load_model(args):
    """The -model NetParameter with the --set overrides applied."""
    from ..io.text import read_net_param
    param = read_net_param(args.model)
    if getattr(args, "set", None):
        from .overrides import apply_net_overrides
        apply_net_overrides(param, args.set)
    return param


def use_device(gpu, log):
    """Caffe's choice of mode from ``--gpu`` ('' = CPU, 'all' = device 0,
    '0,1' = the first id here; one id per process)."""
    from ..core import backend
    if gpu:
        device = 0 if gpu == "all" else int(gpu.split(",")[0])
        log.info("Use GPU with device ID %d", device)
        backend.set_device(device)
        backend.set_mode_gpu()
    else:
        log.info("Use CPU.")
        backend.set_mode_cpu()
