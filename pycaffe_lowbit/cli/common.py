"""What the commands share: gflags-style flags, Caffe's net and run flags,
loading a model with its ``--set`` overrides, and picking the device.

Every command module imports this one; this one imports no command.
A command is ``Command(run, help, add_flags)``: ``run(args, log)`` returns the
exit code, ``add_flags(parser)`` declares its arguments.
"""
import argparse
from collections import namedtuple

from ..core import backend

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
    flag(p, "data_workers", type=int, default=0,
         help="threads decoding and transforming each batch in every Data and "
              "ImageData layer (ours; default 0: the layer's workers field, else "
              "LOWBIT_DATA_WORKERS, else the CPU count); batches do not depend on it")
    flag(p, "set", action="append", default=[], metavar="FIELD=VALUE",
         help="override a solver or layer field without editing the file "
              "(repeatable), e.g. 'layer[data].data_param.source=/data/lmdb'")


def load_model(args):
    """The -model NetParameter with the --set overrides applied."""
    from ..formats.text import read_net_param
    param = read_net_param(args.model)
    if getattr(args, "set", None):
        from .overrides import apply_net_overrides
        apply_net_overrides(param, args.set)
    return param


def gpu_ids(gpu):
    """``--gpu`` as device ids, as Caffe's get_gpus: '' -> [], 'all' -> every
    device of the machine, '0,1' -> [0, 1]."""
    if not gpu:
        return []
    if gpu == "all":
        return list(range(backend.device_count()))
    try:
        return [int(g) for g in gpu.split(",") if g.strip()]
    except ValueError:
        raise ValueError("--gpu %s: expected device ids (0 or 0,1) or all" % gpu) from None


def gpu_from_solver(gpu, solver_param):
    """Caffe's precedence for ``train``: the ``--gpu`` flag; without it, the
    solver file's ``solver_mode: GPU`` with its ``device_id`` (default 0)."""
    if gpu or solver_param is None:
        return gpu
    if solver_param.HasField("solver_mode") and \
            solver_param.solver_mode == solver_param.GPU:
        return str(solver_param.device_id if solver_param.HasField("device_id") else 0)
    return gpu


def use_device(gpu, log, training=False):
    """Set the mode and device for ``--gpu`` (Caffe's lines: "Use CPU." /
    "Use GPU with device ID 0", or for ``train`` "Using GPUs 0" and "GPU 0:
    <name>"). Where a GPU is asked for but none is usable, one warning line
    says why, and the command runs on the CPU. Returns the device ids used."""
    reason = backend.gpu_unavailable_reason() if gpu else None
    if reason:
        log.warning("--gpu %s asks for a GPU, but %s: running on the CPU", gpu, reason)
        gpu = ""
    ids = gpu_ids(gpu)
    if not ids:
        log.info("Use CPU.")
        backend.set_mode_cpu()
        return []
    count = backend.device_count()
    missing = [i for i in ids if not 0 <= i < count]
    if missing:
        raise ValueError("--gpu %s: no device %s (this machine has %d: 0..%d)"
                         % (gpu, missing[0], count, count - 1))
    if training:
        log.info("Using GPUs %s", ", ".join(str(i) for i in ids))
        for i in ids:
            log.info("GPU %d: %s", i, _device_name(i))
    else:
        log.info("Use GPU with device ID %d", ids[0])
    backend.set_device(ids[0])
    backend.set_mode_gpu()
    return ids


def _device_name(device_id):
    name = backend.device_properties(device_id).get("name", b"")
    return name.decode() if isinstance(name, bytes) else str(name)
