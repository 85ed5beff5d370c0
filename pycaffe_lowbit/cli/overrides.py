"""``--set FIELD=VALUE``: override fields of a solver or net at load time.

Caffe has no such flag; it lets the seeds' files, whose data paths are
placeholders, run unmodified::

    lowbit-caffe train -solver solver.prototxt \\
        --set 'layer[cifar].data_param.source=/data/cifar_train_lmdb' \\
        --set base_lr=0.01 --set 'stepvalue=[20000,30000]'

The grammar of a path and of a value is in ``override_syntax.py``. Here the
parsed override is applied: each step picks a field (or the elements of a
repeated field, by index or by ``name``) of the message reached so far, and the
value is converted by the type of the last field. Against a solver, a path that
starts with ``layer[...]`` applies to the solver's nets, inline or read from
their files (which are then carried inline).

Errors (``OverrideError``, a ``ValueError``) quote the override, name the step
that failed and say what was expected: close matches for an unknown field, the
layer names for an unknown layer, the valid names for an enum.
"""
import difflib

from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor as FD

from ..proto import caffe_pb2
from .override_syntax import (OverrideError, _fail, _scalar, _split_list, is_net_override,
                              parse_override)

__all__ = ["OverrideError", "parse_override", "apply_overrides", "apply_net_overrides",
           "apply_solver_overrides", "is_net_override"]

_NET_FILE_FIELDS = (("net", "net_param"), ("train_net", "train_net_param"))


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
                    from ..formats.text import read_net_param as read_net
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
