"""Every ``lowbit-caffe`` command line shown in the docs (``$ ...`` lines of
docs/**/*.rst, ``mpirun -np N`` in front allowed) parses with the real
command-line parser, so a renamed command or flag fails here. The Python
examples are run by the doctest builder (.ci/run: sphinx-build -b doctest)."""
import os
import shlex

import pytest

from pycaffe_lowbit.cli import build_parser
from support import paths

DOCS = os.path.join(paths.ROOT, "docs")
SKIP_DIRS = {"_build", "generated"}


def shown_commands():
    """(file:line, argv after 'lowbit-caffe') for every console line of the docs."""
    found = []
    for folder, dirs, files in os.walk(DOCS):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in sorted(files):
            if not name.endswith(".rst"):
                continue
            path = os.path.join(folder, name)
            for number, line in enumerate(open(path, encoding="utf-8"), 1):
                text = line.strip()
                if not text.startswith("$ "):
                    continue
                argv = shlex.split(text[2:])
                if "lowbit-caffe" not in argv:
                    continue
                where = "%s:%d" % (os.path.relpath(path, paths.ROOT), number)
                found.append((where, argv[argv.index("lowbit-caffe") + 1:]))
    return found


COMMANDS = shown_commands()


def test_the_docs_show_commands():
    assert len(COMMANDS) > 20
    shown = {argv[0] for _, argv in COMMANDS}
    assert {"train", "test", "time", "summary", "deploy", "convert", "convert_imageset",
            "data"} <= shown


@pytest.mark.parametrize("where, argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_shown_command_parses(where, argv, capsys):
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail("%s: lowbit-caffe %s: %s" % (where, " ".join(argv),
                                                 capsys.readouterr().err.strip()))
