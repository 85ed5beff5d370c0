"""``--set FIELD=VALUE``: override fields of a solver or net at load time.

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
import difflib
import re

from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor as FD

from .proto import caffe_pb2

__all__ = ["OverrideError", "parse_override", "apply_overrides", "apply_net_overrides",
           "apply_solver_overrides", "is_net_override"]

_STEP = re.compile(r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*("[^"]*"|'[^']*'|[^\]]*?)\s*\])?\s*$""")
_INT_TYPES = (FD.CPPTYPE_INT32, FD.CPPTYPE_INT64, FD.CPPTYPE_UINT32, FD.CPPTYPE_UINT64)
_NET_FILE_FIELDS = (("net", "net_param"), ("train_net", "train_net_param"))


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


def _field(msg, name, ov, where):
    fields = msg.DESCRIPTOR.fields_by_name
    if name in fields:
        return fields[name]
    candidates = list(fields)
    if isinstance(msg, caffe_pb2.SolverParameter):
        candidates.append("layer")
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = ("; did you mean %s?" % ", ".join(close)) if close else \
        "; its fields are %s" % ", ".join(sorted(fields)[:40])
    raise _fail(ov.text, "%s has no field %r%s" % (where, name, hint))


def _select(msg, fd, sel, ov, where):
    """The messages that ``fd[sel]`` picks in ``msg``."""
    seq = getattr(msg, fd.name)
    if isinstance(sel, int):
        n = len(seq)
        i = sel + n if sel < 0 else sel
        if 0 <= i < n:
            return [seq[i]]
        if i == n and fd.cpp_type == FD.CPPTYPE_MESSAGE:
            return [seq.add()]
        raise _fail(ov.text, "index %d is out of range for %s.%s, which has %d element(s)"
                    % (sel, where, fd.name, n))
    if "name" not in fd.message_type.fields_by_name:
        raise _fail(ov.text, "%s.%s[%s]: its elements have no name; expected an integer "
                             "index" % (where, fd.name, sel))
    return [item for item in seq if item.name == sel]


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


def _assign(msg, fd, sel, ov, where):
    value = ov.value
    name = fd.name
    if fd.cpp_type == FD.CPPTYPE_MESSAGE:
        if _repeated(fd) and sel is None:
            targets = None
        else:
            targets = _select(msg, fd, sel, ov, where) if sel is not None else [getattr(msg, name)]
        body = value.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise _fail(ov.text, "%s.%s is a message (%s): expected a text-format body in "
                                 "braces, e.g. %s={...}, or a path into it"
                        % (where, name, fd.message_type.name, name))
        if targets is None:
            targets = [getattr(msg, name).add()]
        for t in targets:
            t.Clear()
            try:
                text_format.Parse(body[1:-1], t)
            except text_format.ParseError as exc:
                raise _fail(ov.text, "cannot read the %s body: %s" % (fd.message_type.name,
                                                                     exc)) from None
        return
    if _repeated(fd):
        seq = getattr(msg, name)
        if sel is not None:
            if not isinstance(sel, int):
                raise _fail(ov.text, "%s.%s[%s]: expected an integer index" % (where, name, sel))
            i = sel + len(seq) if sel < 0 else sel
            if i == len(seq):
                seq.append(_scalar(fd, value, ov))
            elif 0 <= i < len(seq):
                seq[i] = _scalar(fd, value, ov)
            else:
                raise _fail(ov.text, "index %d is out of range for %s.%s, which has %d "
                                     "element(s)" % (sel, where, name, len(seq)))
            return
        if value.startswith("[") and value.endswith("]"):
            items = [_scalar(fd, v, ov) for v in _split_list(value)]
        else:
            items = [_scalar(fd, value, ov)]
        del seq[:]
        seq.extend(items)
        return
    if sel is not None:
        raise _fail(ov.text, "%s.%s is not a repeated field; it takes no [%s]" % (where, name, sel))
    setattr(msg, name, _scalar(fd, value, ov))


def _apply_steps(targets, ov, steps, where):
    """Walk ``steps`` from each message of ``targets``; return how many were set."""
    for field, sel in steps[:-1]:
        nxt = []
        for msg in targets:
            fd = _field(msg, field, ov, where)
            if fd.cpp_type != FD.CPPTYPE_MESSAGE:
                raise _fail(ov.text, "%s.%s is %s, not a message: nothing after it can be "
                                     "set" % (where, field, _type_name(fd)))
            if _repeated(fd):
                if sel is None:
                    raise _fail(ov.text, "%s.%s is a repeated field: expected %s[INDEX]%s"
                                % (where, field, field,
                                   " or %s[NAME]" % field
                                   if "name" in fd.message_type.fields_by_name else ""))
                picked = _select(msg, fd, sel, ov, where)
                if not picked and isinstance(sel, str):
                    names = [m.name for m in getattr(msg, field)]
                    raise _fail(ov.text, "no %s named %r in %s; %s names: %s"
                                % (field, sel, where, field, ", ".join(names) or "(none)"))
                nxt.extend(picked)
            else:
                if sel is not None:
                    raise _fail(ov.text, "%s.%s is not a repeated field; it takes no [%s]"
                                % (where, field, sel))
                nxt.append(getattr(msg, field))
        where = "%s.%s" % (where, field) if sel is None else "%s.%s[%s]" % (where, field, sel)
        targets = nxt
    field, sel = steps[-1]
    for msg in targets:
        fd = _field(msg, field, ov, where)
        _assign(msg, fd, sel, ov, where)
    return len(targets)


def _repeated(fd):
    rep = getattr(fd, "is_repeated", None)
    if rep is not None:
        return rep() if callable(rep) else rep
    return fd.label == FD.LABEL_REPEATED


def _type_name(fd):
    return {FD.CPPTYPE_STRING: "a string", FD.CPPTYPE_BOOL: "a bool", FD.CPPTYPE_ENUM: "an enum",
            FD.CPPTYPE_FLOAT: "a float", FD.CPPTYPE_DOUBLE: "a double"}.get(fd.cpp_type,
                                                                          "an integer")


def _layer_list_name(net):
    return "layers" if len(net.layers) and not len(net.layer) else "layer"


def _apply_to_nets(nets, ov):
    """Apply a ``layer[...]`` override to every net in ``nets`` (list of (label, net))."""
    field, sel = ov.steps[0]
    total = 0
    names = []
    for label, net in nets:
        lname = field
        if field == "layer" and _layer_list_name(net) == "layers":
            lname = "layers"
        if isinstance(sel, int) or not hasattr(net, lname):
            steps = [(lname, sel)] + ov.steps[1:]
            total += _apply_steps([net], ov, steps, label)
            continue
        picked = [l for l in getattr(net, lname) if l.name == sel]
        names.extend(l.name for l in getattr(net, lname))
        if picked:
            where = "%s.%s[%s]" % (label, lname, sel)
            if len(ov.steps) == 1:
                raise _fail(ov.text, "%s is a layer: expected a path into it, e.g. "
                                     "layer[%s].name=..." % (where, sel))
            total += _apply_steps(picked, ov, ov.steps[1:], where)
    if total == 0 and isinstance(sel, str):
        seen = list(dict.fromkeys(names))
        close = difflib.get_close_matches(sel, seen, n=3, cutoff=0.6)
        raise _fail(ov.text, "no layer named %r%s; the layers are: %s"
                    % (sel, (" (did you mean %s?)" % ", ".join(close)) if close else "",
                       ", ".join(seen) or "(none)"))
    return total


def apply_net_overrides(net_param, overrides):
    """Apply ``["path=value", ...]`` to a ``NetParameter`` in place; return it."""
    for text in overrides:
        ov = parse_override(text)
        if is_net_override(ov):
            _apply_to_nets([("net %r" % net_param.name if net_param.name else "net", net_param)],
                           ov)
        else:
            _apply_steps([net_param], ov, ov.steps, "NetParameter")
    return net_param


def _solver_nets(solver_param, read_net):
    """(label, NetParameter) for every net of the solver; file nets are read
    (with ``read_net``) and moved inline."""
    nets = []
    for file_field, param_field in _NET_FILE_FIELDS:
        if solver_param.HasField(param_field):
            nets.append((param_field, getattr(solver_param, param_field)))
        elif getattr(solver_param, file_field):
            path = getattr(solver_param, file_field)
            net = read_net(path)
            getattr(solver_param, param_field).CopyFrom(net)
            solver_param.ClearField(file_field)
            nets.append(("%s (%s)" % (param_field, path), getattr(solver_param, param_field)))
    for i, net in enumerate(solver_param.test_net_param):
        nets.append(("test_net_param[%d]" % i, net))
    paths = list(solver_param.test_net)
    if paths:
        solver_param.ClearField("test_net")
        for path in paths:
            net = solver_param.test_net_param.add()
            net.CopyFrom(read_net(path))
            nets.append(("test_net_param (%s)" % path, net))
    return nets


def apply_solver_overrides(solver_param, overrides, read_net=None):
    """Apply ``["path=value", ...]`` to a ``SolverParameter`` in place; return it.

    ``layer[...]`` paths apply to the solver's nets. When there are such paths
    and the solver names its nets by file (``net``, ``train_net``,
    ``test_net``), those files are read with ``read_net`` (default:
    ``io.text.read_net_param``, paths as given -- relative to the working
    directory, as Caffe reads them) and carried inline (``net_param``...)
    with the overrides applied; the file fields are cleared.
    """
    parsed = [parse_override(t) for t in overrides]
    nets = None
    for ov in parsed:
        if is_net_override(ov) and ov.steps[0][0] not in solver_param.DESCRIPTOR.fields_by_name:
            if nets is None:
                if read_net is None:
                    from .io.text import read_net_param as read_net
                nets = _solver_nets(solver_param, read_net)
            if not nets:
                raise _fail(ov.text, "the solver has no net (net, net_param, train_net, "
                                     "train_net_param, test_net or test_net_param) for a "
                                     "layer override")
            _apply_to_nets(nets, ov)
        else:
            _apply_steps([solver_param], ov, ov.steps, "SolverParameter")
    return solver_param


def apply_overrides(param, overrides, **kwargs):
    """Apply overrides to a SolverParameter or NetParameter (or any message)."""
    if isinstance(param, caffe_pb2.SolverParameter):
        return apply_solver_overrides(param, overrides, **kwargs)
    if isinstance(param, caffe_pb2.NetParameter):
        return apply_net_overrides(param, overrides)
    for text in overrides:
        ov = parse_override(text)
        _apply_steps([param], ov, ov.steps, type(param).__name__)
    return param
