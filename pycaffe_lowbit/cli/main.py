"""The ``lowbit-caffe`` entry point: one parser over every command module's
``COMMANDS``, then the command's ``run(args, log)``.

Flags are accepted as Caffe's gflags accepts them: ``-model x``, ``--model x``,
``-model=x`` and ``--model=x``. A new command is a module here with a
``COMMANDS`` dict (see ``common.Command``), added to ``FAMILIES`` below.
"""
import argparse
import sys

from ..core.errors import is_user_error, user_error_summary
from ..data import workers
from ..logs.glog import setup_logging
from ..version import __version__
from . import benchmark, data, deploy, device, draw, logs, score, summary, train

# Help lists the commands in this order: Caffe's own four, then ours.
FAMILIES = (benchmark, device, train, score, draw, logs, data, deploy, summary)
COMMANDS = {name: command for family in FAMILIES for name, command in family.COMMANDS.items()}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lowbit-caffe",
        description="Caffe's command line, for low-bit networks. "
                    "Usage: lowbit-caffe <command> <args>",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", "-version", action="version",
                        version="lowbit-caffe %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, command in COMMANDS.items():
        command.add_flags(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 1
    log = setup_logging()
    try:
        if getattr(args, "data_workers", 0):
            workers.set_override(args.data_workers)
        return COMMANDS[args.command].run(args, log) or 0
    except (ValueError, OSError, KeyError, MemoryError) as exc:
        log.error("%s", user_error_summary(exc) if is_user_error(exc) else exc)
        return 1
    except Exception as exc:        # a user's Python layer: one line, where and what
        if not is_user_error(exc):
            raise
        log.error("%s", user_error_summary(exc))
        return 1
    except KeyboardInterrupt:       # SIGINT where no handler (train's) takes it
        log.error("Interrupted.")
        return 130


if __name__ == "__main__":
    sys.exit(main())
