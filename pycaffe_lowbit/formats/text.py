"""Text prototxt: NetParameter and SolverParameter files, read and written as Caffe does.

Reading parses with protobuf's text format (fields matched by name, so both the
upstream and the HWGQ spellings of fields 147/148 parse) and applies Caffe's
upgrades (``io.upgrade``). A syntax error raises ``PrototxtError``, whose
message reads ``file:line:column: what was expected``, then the offending line
with a caret under the column.

One leniency, on by default: a string that runs to the end of its line without
a closing quote (as in two of the SQ fork's solver files) is read as if it
ended there, with a warning naming the place. Caffe rejects such files; pass
``strict=True`` to do the same.

Writing (``format_text``/``write_text``) prints as Caffe's C++ TextFormat does:
fields in number order, two-space indents, floats in the shortest ``%g`` form
that reads back to the same float32 (``1``, ``0.1``, ``1e-05``).
"""
import logging
import math
import os
import re

import numpy as np
from google.protobuf import descriptor, text_encoding, text_format

from ..proto import caffe_pb2
from . import upgrade
from .caffemodel import atomic_write_bytes

log = logging.getLogger("pycaffe_lowbit")


class PrototxtError(ValueError):
    """A prototxt that does not parse. ``filename``, ``line`` and ``column``
    (1-based; None where unknown) say where."""

    def __init__(self, message, filename=None, line=None, column=None):
        super().__init__(message)
        self.filename, self.line, self.column = filename, line, column


# -- reading ------------------------------------------------------------------

def _read_file(path, what):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(2, "%s file not found" % what, path) from None
    except IsADirectoryError:
        raise IsADirectoryError(21, "%s path is a directory, not a file" % what,
                                path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        log.warning("%s: not valid UTF-8 (byte %d); reading it as Latin-1", path, e.start)
        return raw.decode("latin-1")


_POSITION = re.compile(r"^\d+:\d+ : ")


def _error(err, text, filename, type_name):
    line, column = err.GetLine(), err.GetColumn()
    message = _POSITION.sub("", str(err))
    where = filename or "<string>"
    if line is not None:
        where += ":%d" % line
        if column is not None:
            where += ":%d" % column
    lines = text.split("\n")
    src = lines[line - 1].rstrip("\r\n") if line is not None and 1 <= line <= len(lines) \
        else None
    if src is not None:  # protobuf quotes the whole line first; we show it below
        for quoted in ("'%s': " % src, "'%s': " % src.strip(), "'': "):
            if message.startswith(quoted):
                message = message[len(quoted):]
                break
        if column is not None and _at_end(lines, line, column):
            message += " (the text ends here)"
    out = "%s: error parsing %s: %s" % (where, type_name, message)
    if src is not None:
        out += "\n    " + src.replace("\t", " ")
        if column is not None and column >= 1:
            out += "\n    " + " " * (column - 1) + "^"
    return PrototxtError(out, filename, line, column)


_LAST_TOKEN = re.compile(r"""\s*("([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*'|[\w.+-]+|.)""")
_TRAILER = re.compile(r"(\s|#[^\n]*)*")


def _at_end(lines, line, column):
    """Whether nothing but the token at (line, column) follows: protobuf reports
    running out of text at the last token it read."""
    rest = "\n".join([lines[line - 1][max(column, 1) - 1:]] + lines[line:])
    token = _LAST_TOKEN.match(rest)
    end = token.end() if token else 0
    return _TRAILER.fullmatch(rest, end) is not None


def _close_string(text, err, filename):
    """The text with an unterminated string closed at the end of its line, or
    None when the error is not that."""
    if "String missing ending quote" not in str(err) or err.GetLine() is None:
        return None
    lines = text.split("\n")
    idx, col = err.GetLine() - 1, err.GetColumn()
    if not 0 <= idx < len(lines) or not col:
        return None
    line = lines[idx]
    quote = line[col - 1:col]
    if quote not in ("'", '"') or quote in line[col:]:
        return None
    body = line.rstrip()
    log.warning("%s:%d:%d: string has no closing quote; reading it as ending at the "
                "end of the line (Caffe rejects this file)",
                filename or "<string>", idx + 1, col)
    lines[idx] = body + quote + line[len(body):]
    return "\n".join(lines)


def parse_text(text, message, filename=None, strict=False):
    """Parse prototxt ``text`` into ``message`` (cleared first) and return it;
    no upgrade. Raises PrototxtError."""
    type_name = message.DESCRIPTOR.full_name
    for _ in range(text.count("\n") + 2):
        message.Clear()
        try:
            return text_format.Parse(text, message)
        except text_format.ParseError as err:
            fixed = None if strict else _close_string(text, err, filename)
            if fixed is None:
                raise _error(err, text, filename, type_name) from None
            text = fixed
    raise AssertionError("unreachable")


def parse_net_text(text, filename=None, upgrade_net=True, strict=False):
    """A NetParameter from prototxt text, upgraded as Caffe does unless
    ``upgrade_net`` is False."""
    net = parse_text(text, caffe_pb2.NetParameter(), filename, strict)
    if upgrade_net:
        upgrade.upgrade_net_in_place(net, filename or "<string>")
    return net


def read_net_param(path, upgrade_net=True, strict=False):
    """Caffe's ReadNetParamsFromTextFileOrDie: a net prototxt, upgraded."""
    path = os.fspath(path)
    return parse_net_text(_read_file(path, "NetParameter prototxt"), path,
                          upgrade_net, strict)


def parse_solver_text(text, filename=None, strict=False):
    """A SolverParameter from prototxt text, with the legacy ``solver_type``
    upgraded (and inline nets upgraded)."""
    solver = parse_text(text, caffe_pb2.SolverParameter(), filename, strict)
    if upgrade.solver_needs_upgrade(solver):
        solver = upgrade.upgrade_solver(solver, filename or "<string>")
    return solver


def read_solver_param(path, strict=False):
    """Caffe's ReadSolverParamsFromTextFileOrDie: the solver upgraded, and a
    missing or directory ``snapshot_prefix`` filled in from the file's name."""
    path = os.fspath(path)
    solver = parse_solver_text(_read_file(path, "SolverParameter prototxt"), path, strict)
    upgrade.upgrade_snapshot_prefix(solver, path)
    return solver


# -- writing ------------------------------------------------------------------

def _float_text(value, digits, dtype):
    """protobuf's SimpleFtoa/SimpleDtoa: %g at FLT_DIG (DBL_DIG) digits, or
    +3 (+2) where that does not read back to the same value."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    short, precise = digits
    out = "%.*g" % (short, value)
    if dtype(out) != dtype(value):
        out = "%.*g" % (precise, value)
    return out


_FD = descriptor.FieldDescriptor


def _is_repeated(field):
    if hasattr(field, "is_repeated"):  # protobuf >= 5.28 (``label`` is deprecated)
        return field.is_repeated
    return field.label == _FD.LABEL_REPEATED


def _scalar_text(field, value):
    t = field.type
    if t == _FD.TYPE_FLOAT:
        return _float_text(value, (6, 9), np.float32)
    if t == _FD.TYPE_DOUBLE:
        return _float_text(value, (15, 17), float)
    if t == _FD.TYPE_BOOL:
        return "true" if value else "false"
    if t == _FD.TYPE_ENUM:
        ev = field.enum_type.values_by_number.get(value)
        return ev.name if ev is not None else str(value)
    if t in (_FD.TYPE_STRING, _FD.TYPE_BYTES):
        if isinstance(value, str):      # escape the UTF-8 bytes, as C++ does
            value = value.encode("utf-8")
        return '"%s"' % text_encoding.CEscape(value, as_utf8=False)
    return str(value)


def _format_message(msg, indent, out):
    pad = "  " * indent
    for field, value in msg.ListFields():
        values = value if _is_repeated(field) else (value,)
        for v in values:
            if field.type in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
                out.append("%s%s {\n" % (pad, field.name))
                _format_message(v, indent + 1, out)
                out.append(pad + "}\n")
            else:
                out.append("%s%s: %s\n" % (pad, field.name, _scalar_text(field, v)))


def format_text(msg):
    """``msg`` as Caffe's C++ TextFormat prints it (unknown fields left out)."""
    out = []
    _format_message(msg, 0, out)
    return "".join(out)


def write_text(msg, path):
    """Write ``msg`` as prototxt, atomically (a crash leaves any old file intact)."""
    atomic_write_bytes(path, format_text(msg).encode("utf-8"))
