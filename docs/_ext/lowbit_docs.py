"""Sphinx helpers for the pycaffe_lowbit docs; nothing here is written by hand
twice, so nothing can drift:

* ``.. lowbit-cli::`` renders the command-line reference from the argparse
  parsers themselves (``pycaffe_lowbit.cli.build_parser()``): a table of the
  commands, then per command its help, as ``lowbit-caffe CMD --help`` prints it.
* At build start, ``api/generated/`` gets one page per package of
  ``pycaffe_lowbit`` found on disk, with an ``automodule`` for the package and
  each of its public modules, so a new module is documented without an edit.
* Docstrings are plain text with math (``|W|``, ``a * b``, aligned formulas),
  not always valid reStructuredText: one that docutils would warn about is
  shown verbatim, as a literal block; a clean one is rendered (and its ``>>>``
  examples are run by the doctest builder).
"""
import io
import os

from docutils import nodes
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive
from docutils.utils import Reporter

PACKAGE = "pycaffe_lowbit"
SKIP_MODULES = {"pycaffe_lowbit.proto.caffe_pb2"}     # protoc's output


# -- the command-line reference --------------------------------------------------
def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return action
    raise RuntimeError("lowbit-caffe's parser has no sub-commands")


class CommandLineReference(Directive):
    """``.. lowbit-cli::``: every lowbit-caffe command with its flags."""

    has_content = False

    def run(self):
        os.environ["COLUMNS"] = "92"          # argparse's wrap width, the same everywhere
        from pycaffe_lowbit.cli import build_parser
        sub = _subparsers(build_parser())
        helps = {a.dest: a.help for a in sub._choices_actions}
        table = nodes.definition_list()
        sections = []
        for name, parser in sub.choices.items():
            ref = "cli-" + name
            term = nodes.term()
            term += nodes.reference("", "", nodes.literal(text=name), refid=ref)
            table += nodes.definition_list_item("", term, nodes.definition(
                "", nodes.paragraph(text=helps.get(name) or "")))
            section = nodes.section(ids=[ref], names=[ref])
            section += nodes.title(text="lowbit-caffe " + name)
            section += nodes.paragraph(text=helps.get(name) or "")
            section += nodes.literal_block(text=parser.format_help().rstrip())
            sections.append(section)
        return [table] + sections


# -- API pages ---------------------------------------------------------------------
def _packages(root):
    """{package name: [public module names]} for the package tree under ``root``."""
    found = {}
    base = os.path.join(root, PACKAGE)
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        if "__init__.py" not in files:
            dirs[:] = []
            continue
        package = os.path.relpath(folder, root).replace(os.sep, ".")
        modules = [package + "." + f[:-3] for f in sorted(files)
                   if f.endswith(".py") and not f.startswith("_")]
        found[package] = [m for m in modules if m not in SKIP_MODULES]
    return found


def _page(package, modules):
    title = "``%s``" % package
    lines = [title, "=" * len(title), "", ".. automodule:: " + package, ""]
    for module in modules:
        heading = "``%s``" % module
        lines += [heading, "-" * len(heading), "", ".. automodule:: " + module, ""]
    return "\n".join(lines)


def write_api_pages(app):
    out_dir = os.path.join(app.srcdir, "api", "generated")
    os.makedirs(out_dir, exist_ok=True)
    root = os.path.dirname(os.path.abspath(app.srcdir))
    wanted = set()
    for package, modules in _packages(root).items():
        path = os.path.join(out_dir, package + ".rst")
        wanted.add(path)
        text = _page(package, modules)
        if not os.path.exists(path) or open(path).read() != text:
            with open(path, "w") as f:
                f.write(text)
    for name in os.listdir(out_dir):                     # a package that went away
        if os.path.join(out_dir, name) not in wanted:
            os.remove(os.path.join(out_dir, name))


# -- plain-text docstrings -----------------------------------------------------------
def _is_clean_rst(text):
    stream = io.StringIO()
    publish_doctree(text, settings_overrides={
        "report_level": Reporter.WARNING_LEVEL, "halt_level": Reporter.SEVERE_LEVEL + 1,
        "warning_stream": stream, "file_insertion_enabled": False, "raw_enabled": False})
    return not stream.getvalue()


def verbatim_unless_clean(app, what, name, obj, options, lines):
    text = "\n".join(lines)
    if not text.strip() or _is_clean_rst(text):
        return
    body = ["   " + line if line.strip() else "" for line in lines]
    lines[:] = ["::", ""] + body + [""]


def setup(app):
    app.add_directive("lowbit-cli", CommandLineReference)
    app.connect("builder-inited", write_api_pages)
    app.connect("autodoc-process-docstring", verbatim_unless_clean)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
