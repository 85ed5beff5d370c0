"""``lowbit-caffe``: Caffe's command line (``caffe <command> -flag value``).

Flags are accepted as Caffe's gflags accepts them: ``-model x``, ``--model x``,
``-model=x`` and ``--model=x``. Commands other issues add register here.
"""
import argparse
import os
import sys
import time

from . import __version__
from .cli_tools import register as register_data_tools
from .log import setup_logging

COMMANDS = {}


def command(name, help_text):
    def decorate(fn):
        COMMANDS[name] = (fn, help_text)
        return fn
    return decorate


def flag(parser, name, **kwargs):
    """Add ``-name`` and ``--name`` (gflags spelling)."""
    parser.add_argument("-" + name, "--" + name, dest=name, **kwargs)


def _common_net_flags(p):
    flag(p, "model", help="the model definition protocol buffer text file")
    flag(p, "weights", default="",
         help="pretrained weights (.caffemodel or .h5), comma-separated to merge several")
    flag(p, "phase", default="", choices=["", "TRAIN", "TEST"],
         help="network phase (TRAIN or TEST); only used for time")
    flag(p, "level", type=int, default=0, help="network level")
    flag(p, "stage", default="", help="network stages, comma-separated")
    flag(p, "gpu", default="", help="GPU ids (e.g. 0 or 0,1 or all); CPU when unset")
    flag(p, "iterations", type=int, default=50, help="number of iterations to run")


def load_model(args):
    """The -model NetParameter with the --set overrides applied."""
    from .io.text import read_net_param
    param = read_net_param(args.model)
    if getattr(args, "set", None):
        from .overrides import apply_net_overrides
        apply_net_overrides(param, args.set)
    return param


def _use_device(gpu, log):
    import pycaffe_lowbit as caffe
    if gpu:
        device = 0 if gpu == "all" else int(gpu.split(",")[0])
        log.info("Use GPU with device ID %d", device)
        caffe.set_device(device)
        caffe.set_mode_gpu()
    else:
        log.info("Use CPU.")
        caffe.set_mode_cpu()


@command("time", "benchmark the execution time of a model, layer by layer")
def cmd_time(args, log):
    import pycaffe_lowbit as caffe
    from google.protobuf import text_format
    if not args.model:
        raise SystemExit("lowbit-caffe time: need a model definition to time (-model)")
    _use_device(args.gpu, log)
    phase = caffe.TEST if args.phase == "TEST" else caffe.TRAIN
    stages = [s for s in args.stage.split(",") if s]
    net = caffe.Net(load_model(args), phase, level=args.level, stages=stages,
                    weights=args.weights or None)
    log.info("%s", text_format.MessageToString(net._param).rstrip())
    log.info("Performing Forward")
    loss = net.forward_prefilled()
    log.info("Initial loss: %g", loss)
    log.info("Performing Backward")
    net.backward_all()
    n_layers = len(net.layers)
    fwd = [0.0] * n_layers
    bwd = [0.0] * n_layers
    log.info("*** Benchmark begins ***")
    log.info("Testing for %d iterations.", args.iterations)
    total_start = time.perf_counter()
    from .progress import iterate
    for it in iterate(range(1, args.iterations + 1), args.progress, args.iterations, "time"):
        it_start = time.perf_counter()
        for i in range(n_layers):
            t0 = time.perf_counter()
            net.forward_from_to(i, i)
            fwd[i] += time.perf_counter() - t0
        for i in range(n_layers - 1, -1, -1):
            t0 = time.perf_counter()
            bottom = [net._blobs[k] for k in net._bottom_id_vecs[i]]
            top = [net._blobs[k] for k in net._top_id_vecs[i]]
            net.layers[i].backward(top, net.bottom_need_backward(i), bottom)
            bwd[i] += time.perf_counter() - t0
        log.info("Iteration: %d forward-backward time: %d ms.", it,
                 int((time.perf_counter() - it_start) * 1000))
    total_ms = int((time.perf_counter() - total_start) * 1000)   # whole ms, as Caffe's timer
    log.info("Average time per layer: ")
    iters = max(args.iterations, 1)
    for i, name in enumerate(net._layer_names):
        log.info("%10s\tforward: %g ms.", name, fwd[i] * 1000 / iters)
        log.info("%10s\tbackward: %g ms.", name, bwd[i] * 1000 / iters)
    log.info("Average Forward pass: %g ms.", sum(fwd) * 1000 / iters)
    log.info("Average Backward pass: %g ms.", sum(bwd) * 1000 / iters)
    log.info("Average Forward-Backward: %g ms.", total_ms / iters)
    log.info("Total Time: %d ms.", total_ms)
    log.info("*** Benchmark ends ***")
    return 0


def _later(issue):
    def run(args, log):
        log.error("this command is not available yet in pycaffe_lowbit %s (%s)",
                  __version__, issue)
        return 1
    return run


COMMANDS["device_query"] = (_later("GPU queries: tracked in the GPU issue"),
                            "show GPU diagnostic information (not yet available)")


def _cmd_test(args, log):
    from .cli_test import cmd_test
    return cmd_test(args, log)


def _cmd_train(args, log):
    from .cli_train import cmd_train
    return cmd_train(args, log)


COMMANDS["train"] = (_cmd_train, "train or finetune a model")
COMMANDS["test"] = (_cmd_test, "score a model")


def _draw_flags(p):
    """python/draw_net.py's arguments."""
    p.add_argument("input_net_proto_file", help="input network prototxt file")
    p.add_argument("output_image_file",
                   help="output image file; its extension picks the format "
                        "(png, svg, pdf..., raw for the DOT source)")
    flag(p, "rankdir", default="LR",
         help="one of TB (top-bottom), BT (bottom-top), LR (left-right), "
              "RL (right-left); default LR")
    flag(p, "phase", default="ALL", choices=["TRAIN", "TEST", "ALL"],
         help="which network phase to draw (default ALL: every layer)")
    flag(p, "display_lrm", action="store_true",
         help="show the learning rate multipliers of learning layers")


@command("draw", "draw a net definition as a graph image (needs pydot and Graphviz)")
def cmd_draw(args, log):
    from . import draw
    from .io.text import read_net_param
    from .proto import caffe_pb2
    net = read_net_param(args.input_net_proto_file)
    phase = {"TRAIN": caffe_pb2.TRAIN, "TEST": caffe_pb2.TEST}.get(args.phase)
    log.info("Drawing net to %s", args.output_image_file)
    try:
        draw.draw_net_to_file(net, args.output_image_file, args.rankdir, phase,
                              args.display_lrm)
    except (ImportError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    return 0


def _parse_log_flags(p):
    """tools/extra/parse_log.py's arguments."""
    p.add_argument("logfile_path", help="path to a Caffe training log")
    p.add_argument("output_dir", help="directory for LOG.train and LOG.test (CSV)")
    flag(p, "delimiter", default=",", help="column delimiter in the CSV files (default ,)")
    flag(p, "verbose", action="store_true", help="print the rows and file names")


@command("parse_log", "parse a training log into LOG.train and LOG.test CSV files")
def cmd_parse_log(args, log):
    from . import logparse
    if not args.delimiter or len(args.delimiter) != 1:
        log.error("parse_log: -delimiter must be one character, got %r", args.delimiter)
        return 1
    if not os.path.isdir(args.output_dir):
        log.error("parse_log: output directory %s does not exist", args.output_dir)
        return 1
    try:
        train, test = logparse.parse_log(args.logfile_path)
    except logparse.LogParseError as exc:
        log.error("%s", exc)
        return 1
    written = logparse.save_csv_files(args.logfile_path, args.output_dir, train, test,
                                      args.delimiter)
    for rows, what in ((train, "train"), (test, "test")):
        if not rows:
            log.warning("no %s rows in %s; %s not written", what, args.logfile_path,
                        os.path.basename(args.logfile_path) + "." + what)
    if args.verbose:
        for path in written:
            print("Wrote %s" % path)
    if not train and not test:
        log.error("no training iterations in %s", args.logfile_path)
        return 1
    return 0


def _plot_flags(p):
    p.add_argument("logs", nargs="+", metavar="LOG",
                   help="Caffe training logs to overlay; a last argument ending in an "
                        "image extension (.png, .pdf, .svg...) is the output file")
    p.add_argument("-o", "-output", "--output", dest="output", default="",
                   help="output image file (its extension picks the format)")
    flag(p, "title", default=None, help="figure title (default: the log name)")
    flag(p, "dpi", type=int, default=120, help="resolution of raster output (default 120)")


@command("plot", "plot loss, test accuracy and learning rate of training logs")
def cmd_plot(args, log):
    from . import plot
    from .logparse import LogParseError
    logs = list(args.logs)
    output = args.output
    if not output and len(logs) > 1 and plot.is_image_path(logs[-1]):
        output = logs.pop()
    if not output:
        log.error("plot: no output image: give -o out.png, or out.png as the last argument "
                  "(extensions: %s)", " ".join(plot.IMAGE_EXTENSIONS))
        return 1
    if not plot.is_image_path(output):
        log.error("plot: %s is not an image file name (extensions: %s)", output,
                  " ".join(plot.IMAGE_EXTENSIONS))
        return 1
    try:
        plot.plot_logs(logs, output, title=args.title, dpi=args.dpi)
    except ImportError as exc:
        log.error("plot needs matplotlib (pip install matplotlib): %s", exc)
        return 1
    except LogParseError as exc:
        log.error("%s", exc)
        return 1
    log.info("Plotted %s to %s", ", ".join(logs), output)
    return 0


# Commands with their own arguments instead of the common net flags.
_OWN_FLAGS = {"draw": _draw_flags, "parse_log": _parse_log_flags, "plot": _plot_flags}
register_data_tools(COMMANDS, _OWN_FLAGS)  # convert_imageset, compute_image_mean, ... (cli_tools.py)

# deploy, convert, upgrade_net_proto_text/binary (cli_deploy.py).
from .cli_deploy import DEPLOY_COMMANDS  # noqa: E402
for _name, (_run, _help, _add_flags) in DEPLOY_COMMANDS.items():
    COMMANDS[_name] = (_run, _help)
    _OWN_FLAGS[_name] = _add_flags


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lowbit-caffe",
        description="Caffe's command line, for low-bit networks. "
                    "Usage: lowbit-caffe <command> <args>",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", "-version", action="version",
                        version="lowbit-caffe %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (fn, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name in _OWN_FLAGS:
            _OWN_FLAGS[name](p)
            continue
        _common_net_flags(p)
        flag(p, "solver", default="", help="the solver definition protocol buffer text file")
        flag(p, "snapshot", default="", help="resume training from a .solverstate")
        flag(p, "sigint_effect", default="stop",
             help="action on SIGINT: snapshot, stop or none (default stop)")
        flag(p, "sighup_effect", default="snapshot",
             help="action on SIGHUP: snapshot, stop or none (default snapshot)")
        flag(p, "progress", default="auto", choices=["auto", "on", "off"],
             help="progress bar with ETA on stdout: auto (when stdout and stderr are "
                  "terminals, so logs sent to a file stay pure glog lines), on, off")
        flag(p, "set", action="append", default=[], metavar="FIELD=VALUE",
             help="override a solver or layer field without editing the file "
                  "(repeatable), e.g. 'layer[data].data_param.source=/data/lmdb'")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 1
    log = setup_logging()
    fn, _ = COMMANDS[args.command]
    try:
        return fn(args, log) or 0
    except (ValueError, OSError, KeyError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:       # SIGINT where no handler (train's) takes it
        log.error("Interrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
