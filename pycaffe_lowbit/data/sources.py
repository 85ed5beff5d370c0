"""Where data layers find their data: source paths and list files, with errors
that say what was looked for, where, and how to point elsewhere.

Paths in a net are relative to the working directory, as in Caffe. A missing
source names the layer's field, the path as given and as resolved, and the
``--set`` override that points the layer at other data without editing the file.
"""
import os

from .datum import DataError


def resolved(path):
    """``path`` as given, and as resolved against the working directory."""
    full = os.path.abspath(path)
    return repr(path) if full == path else "%r (resolved against the working " \
        "directory: %s)" % (path, full)


def missing(layer_name, field, path, what, example):
    """A DataError for a source that does not exist."""
    return DataError(
        "%s: %s %s not found. Point the layer at your data with "
        "--set 'layer[%s].%s=%s' (this sets every layer so named; when the TRAIN and "
        "TEST data layers share the name, pick one by its position in the file, "
        "layer[0], layer[1], ...), or edit the prototxt, or run from the directory "
        "its paths are relative to" % (field, what, resolved(path), layer_name, field,
                                       example))


def require(layer_name, field, path, what, example):
    """Check that ``field`` (e.g. data_param.source) names an existing path."""
    if not path:
        raise DataError("%s is not set: give the %s (e.g. %s)" % (field, what, example))
    if not os.path.exists(path):
        raise missing(layer_name, field, path, what, example)


def read_lines(layer_name, field, path, what, example):
    """(line number, text) of every non-blank line of list file ``path``,
    trailing whitespace removed."""
    require(layer_name, field, path, what, example)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = [(n, line.rstrip()) for n, line in enumerate(f, 1)]
    except OSError as exc:
        raise DataError("%s: cannot read %s %s: %s" % (field, what, path, exc)) from None
    return [(n, line) for n, line in lines if line.strip()]
