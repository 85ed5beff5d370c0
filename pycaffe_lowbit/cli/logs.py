"""``lowbit-caffe parse_log LOG OUTDIR`` (tools/extra/parse_log.py) and
``lowbit-caffe plot LOG [LOG...] out.png``: training logs as CSV and as a figure."""
import os

from .common import Command, flag


def _parse_log_flags(p):
    """tools/extra/parse_log.py's arguments."""
    p.add_argument("logfile_path", help="path to a Caffe training log")
    p.add_argument("output_dir", help="directory for LOG.train and LOG.test (CSV)")
    flag(p, "delimiter", default=",", help="column delimiter in the CSV files (default ,)")
    flag(p, "verbose", action="store_true", help="print the rows and file names")


def cmd_parse_log(args, log):
    from ..logs import parse as logparse
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


def cmd_plot(args, log):
    from ..logs import plot
    from ..logs.parse import LogParseError
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


COMMANDS = {
    "parse_log": Command(cmd_parse_log, "parse a training log into LOG.train and LOG.test CSV "
                                        "files", _parse_log_flags),
    "plot": Command(cmd_plot, "plot loss, test accuracy and learning rate of training logs",
                    _plot_flags),
}
