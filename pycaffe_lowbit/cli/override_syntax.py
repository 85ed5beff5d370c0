"""The syntax of ``--set FIELD=VALUE`` (see ``overrides.py`` for where it applies).

Caffe has no such flag; it lets the seeds' files, whose data paths are
placeholders, run unmodified::

    lowbit-caffe train -solver solver.prototxt \\
        --set 'layer[cifar].data_param.source=/data/cifar_train_lmdb' \\
        --set base_lr=0.01 --set 'stepvalue=[20000,30000]'

Grammar (one override per ``--set``; repeat the flag for several)::

    override := path "=" value
    path     := step ("." step)*
    step     := FIELD | FIELD "[" INDEX "]" | FIELD "[" NAME "]"

* ``FIELD`` is a field name of the message reached so far, spelled as in
  caffe.proto (``base_lr``, ``data_param``, ``convolution_param``...).
* ``FIELD[INDEX]`` picks element INDEX (0-based; negative counts from the end)
  of a repeated field: ``test_iter[0]=100``, ``layer[3].name=x``,
  ``layer[conv1].param[1].lr_mult=0``. Indexing one past the end of a repeated
  *message* field appends a new element.
* ``FIELD[NAME]`` picks every element of a repeated message field whose
  ``name`` is NAME -- in practice ``layer[NAME]``: all layers so named (a train
  and a test data layer often share a name, and both change). Quote a NAME that
  looks like a number: ``layer["1"]``. The layer list is ``layer``, or the V1
  ``layers`` list of an old net.
* Against a solver, a path that starts with ``layer[...]`` applies to the
  solver's nets: the inline ``net_param``, ``train_net_param`` and
  ``test_net_param`` and the nets read from its ``net``/``train_net``/
  ``test_net`` files (which are then carried inline, as ``net_param`` etc.).
  Every other path is a SolverParameter path (``net_param.layer[x]...`` also
  works).
* ``value`` is everything after the first ``=`` that is not inside ``[...]``,
  read by the type of the field: integers and floats as written (``1e-3``,
  ``0x10``), bools ``true``/``false`` (also ``1``/``0``), enums by name
  (``lr_policy`` is a string: ``step``; ``solver_mode=GPU``, ``pool=AVE``), or
  by number, strings as written, without quotes (surrounding quotes, if any, are
  dropped). A repeated scalar field takes ``[a,b,...]`` to replace the whole
  list (``[]`` empties it) or a single value to make a one-element list. A
  message field (``weight_filler``...) takes a text-format body in braces:
  ``weight_filler={type: "gaussian" std: 0.01}`` (replacing the message).

Errors (``OverrideError``, a ``ValueError``) quote the override, name the step
that failed and say what was expected: close matches for an unknown field, the
layer names for an unknown layer, the valid names for an enum.
"""
import re

from google.protobuf.descriptor import FieldDescriptor as FD

_STEP = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*("[^"]*"|'[^']*'|[^\]]*?)\s*\])?\s*$""")
_INT_TYPES = (FD.CPPTYPE_INT32, FD.CPPTYPE_INT64, FD.CPPTYPE_UINT32, FD.CPPTYPE_UINT64)


class OverrideError(ValueError):
    """An override that does not parse or does not fit the message."""


class Override:
    """A parsed ``path=value``: ``steps`` is a list of (field, selector) where
    selector is None, an int index or a str name."""

    def __init__(self, text, steps, value):
        self.text, self.steps, self.value = text, steps, value

    def __repr__(self):
        return "Override(%r)" % self.text


def _fail(text, what):
    return OverrideError("--set %r: %s" % (text, what))


def _split_assignment(text):
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0:
            return text[:i], text[i + 1:]
    raise _fail(text, "expected FIELD=VALUE (e.g. base_lr=0.01 or "
                      "layer[NAME].data_param.source=PATH); there is no '='")


def _split_path(path):
    """Split at dots outside brackets and quotes."""
    parts, cur, depth, quote = [], "", 0, None
    for ch in path:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "\"'" and depth:
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return parts


def parse_override(text):
    """Parse ``path=value`` into an ``Override`` (no message needed yet)."""
    if isinstance(text, Override):
        return text
    path, value = _split_assignment(text)
    steps = []
    for part in _split_path(path.strip()):
        m = _STEP.match(part)
        if not m:
            raise _fail(text, "cannot read %r in the path: expected FIELD, FIELD[INDEX] or "
                              "FIELD[NAME]" % part)
        field, sel = m.group(1), m.group(2)
        if sel is not None:
            if len(sel) >= 2 and sel[0] == sel[-1] and sel[0] in "\"'":
                sel = sel[1:-1]
            elif re.fullmatch(r"[-+]?\d+", sel):
                sel = int(sel)
            elif not sel:
                raise _fail(text, "empty brackets after %r: expected an index or a name" % field)
        steps.append((field, sel))
    return Override(text, steps, value.strip())


def is_net_override(override):
    """True for a path that starts at a net's layers (``layer[...]`` / ``layers[...]``)."""
    ov = parse_override(override)
    return ov.steps[0][0] in ("layer", "layers") and ov.steps[0][1] is not None


def _enum_value(fd, text, ov):
    enum = fd.enum_type
    if text in enum.values_by_name:
        return enum.values_by_name[text].number
    if re.fullmatch(r"[-+]?\d+", text) and int(text) in enum.values_by_number:
        return int(text)
    up = text.upper()
    if up in enum.values_by_name:
        return enum.values_by_name[up].number
    raise _fail(ov.text, "%r is not a value of %s (%s): expected one of %s"
                % (text, fd.name, enum.name, ", ".join(enum.values_by_name)))


def _scalar(fd, text, ov):
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    ct = fd.cpp_type
    try:
        if ct in _INT_TYPES:
            value = int(text, 0)
            if ct in (FD.CPPTYPE_UINT32, FD.CPPTYPE_UINT64) and value < 0:
                raise ValueError
            return value
        if ct in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
            return float(text)
    except ValueError:
        kind = "a non-negative integer" if ct in (FD.CPPTYPE_UINT32, FD.CPPTYPE_UINT64) \
            else "an integer" if ct in _INT_TYPES else "a number"
        raise _fail(ov.text, "%r is not %s, as %s expects" % (text, kind, fd.name)) from None
    if ct == FD.CPPTYPE_BOOL:
        low = text.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise _fail(ov.text, "%r is not a bool, as %s expects: true or false" % (text, fd.name))
    if ct == FD.CPPTYPE_ENUM:
        return _enum_value(fd, text, ov)
    if fd.type == FD.TYPE_BYTES:
        return text.encode()
    return text


def _split_list(text):
    inner = text.strip()[1:-1].strip()
    if not inner:
        return []
    items, cur, quote = [], "", None
    for ch in inner:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur += ch
        elif ch == ",":
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [i.strip() for i in items]
