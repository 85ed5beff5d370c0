"""The layer property: what every drawn case of every layer type must satisfy.

A case (``Case``) is a layer's parameter text, its bottoms (float64 arrays)
and what can be checked. ``check_case`` asserts:

* setup either succeeds, or raises ``LayerSetupError`` whose message names
  the layer and one of the fields the case set (or a bottom, for a bottom
  that does not fit); so may forward, for values it checks (a label or an
  index out of range);
* then forward gives finite tops; backward (where the layer has one) gives
  finite bottom and param gradients of the right shapes;
* and a float64 numeric gradient check (``helpers.check_gradient``) passes
  for the bottoms in ``case.grad`` (those backward writes) and, with
  ``case.params``, the layer's blobs. Where the analytic gradient is by
  design not the numeric one (quantizers' straight-through estimators,
  Caffe's MVN formula with a large eps, random masks) ``numeric=False``
  keeps the run of backward and drops the comparison; layers without a
  backward (argmax, data layers) have ``backward=False``.

A setup error may name any field the case set, any field of the type's own
parameter message (a missing one is a reason too) or a bottom ("bottom",
or Caffe's "Input").

The values are drawn so that no input sits within the finite-difference step
of a kink: ``distinct(rng, shapes)`` gives values on a grid of step 0.3
offset by 0.15 (never 0, never within 0.05 of a multiple of 0.15 that is
not on the grid), all different, so max/ReLU/abs/hinge/pooling ties and kinks
are out of reach of the 1e-4 step.
"""
import dataclasses
import re
from typing import Callable, List, Optional

import numpy as np
from google.protobuf import text_format

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.layers import create_layer
from pycaffe_lowbit.layers.base import LayerSetupError
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.pycaffe.net_spec import param_name_dict

from .helpers import check_gradient, make_blobs

NAME = "L"


@dataclasses.dataclass
class Case:
    text: str                            # LayerParameter fields besides name/type/bottom/top
    bottoms: List[np.ndarray]
    n_top: int = 1
    grad: List[int] = dataclasses.field(default_factory=lambda: [0])  # bottoms backward writes
    numeric: bool = True                 # compare with the numeric gradient
    numeric_bottoms: Optional[List[int]] = None   # of these bottoms (default: grad)
    numeric_tops: Optional[List[int]] = None      # through these tops (default: all)
    params: bool = True                  # numeric check of the layer's blobs too
    backward: bool = True                # the layer has a backward
    phase: int = caffe_pb2.TRAIN
    finite: bool = True                  # forward gives finite values (Caffe's 0/0 may not)
    threshold: float = 1e-5
    fields: tuple = ()                   # more names an error may give (e.g. "bottom")
    prepare: Optional[Callable] = None   # called with the layer after setup (feed it)
    top_names: tuple = ()                # names for the tops (default t0, t1...)

    def __repr__(self):                  # what Hypothesis prints for a failing example
        shapes = [a.shape for a in self.bottoms]
        return "Case(%r, bottoms=%s, n_top=%d, phase=%d)" % (self.text, shapes, self.n_top,
                                                            self.phase)


def distinct(rng, *shapes, scale=1.0, positive=False):
    """Arrays of the given shapes whose values are all different: a shuffled
    grid 0.3 * (k - n/2) + 0.15 (no value near 0 or near another), times
    ``scale``; with ``positive`` the grid starts at 0.15."""
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    total = sum(sizes)
    grid = (rng.permutation(total) - (0 if positive else total // 2)) * 0.3 + 0.15
    out, at = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(grid[at:at + size].reshape(shape) * scale)
        at += size
    return out


def labels(rng, shape, classes):
    return rng.integers(0, classes, shape).astype(np.float64)


def _field_names(message, out):
    for field, value in message.ListFields():
        out.add(field.name)
        if field.message_type is not None:
            for item in (value if _repeated(field) else [value]):
                _field_names(item, out)
    return out


def _repeated(field):
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == field.LABEL_REPEATED


def layer_param(type_name, case):
    param = text_format.Parse(case.text, caffe_pb2.LayerParameter())
    param.name = NAME
    param.type = type_name
    param.phase = case.phase
    param.bottom.extend("b%d" % i for i in range(len(case.bottoms)))
    param.top.extend(case.top_names or ["t%d" % i for i in range(case.n_top)])
    return param


def _own_fields(type_name):
    """The type's own parameter message and its fields' names (``clip_param``,
    ``min``, ``max``)."""
    prefix = param_name_dict().get(type_name)
    if prefix is None:
        return set()
    field = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name[prefix + "_param"]
    return {field.name} | {f.name for f in field.message_type.fields}


def _check_setup_error(exc, param, case):
    message = str(exc)
    assert "layer '%s'" % NAME in message, "the error does not name the layer: " + message
    names = _field_names(param, set()) - {"name", "type", "bottom", "top", "phase"}
    names |= set(case.fields) | {"bottom", "bottoms", "input", "inputs"} \
        | _own_fields(param.type)
    words = set(re.findall(r"[a-z_0-9]+", message.lower()))
    assert names & words, ("the error names none of the fields %s: %s"
                           % (sorted(names), message))


def check_case(type_name, case):
    """The property (module docstring). Returns "setup error" or "ok"."""
    backend.set_default_dtype(np.float64)
    param = layer_param(type_name, case)
    try:
        layer = create_layer(param, dtype=np.float64)
        bottom = make_blobs(case.bottoms)
        top = [Blob((), dtype=np.float64) for _ in range(case.n_top)]
        layer.setup(bottom, top)
    except LayerSetupError as exc:
        _check_setup_error(exc, param, case)
        return "setup error"
    try:
        if case.prepare is not None:
            case.prepare(layer)
        layer.reshape(bottom, top)
        with np.errstate(invalid="ignore" if not case.finite else "warn"):
            layer.forward(bottom, top)
    except LayerSetupError as exc:      # a bottom's values checked (labels, indices)
        _check_setup_error(exc, param, case)
        return "forward error"
    for t in top:
        assert not case.finite or np.isfinite(backend.to_numpy(t.data)).all(), \
            "forward gave non-finite values"
    if not case.backward:
        return "ok"
    rng = np.random.default_rng(1)
    propagate = [i in case.grad for i in range(len(bottom))]
    for b in bottom:
        b.diff[...] = 0
    for p in layer.blobs:
        p.diff[...] = 0
    for t, w in zip(top, layer.loss_weights or [0] * len(top)):
        t.diff[...] = w if w else rng.standard_normal(t.shape)
    layer.backward(top, propagate, bottom)
    for i, b in enumerate(bottom):
        if propagate[i]:
            assert b.diff.shape == b.shape, "bottom %d diff shape" % i
            assert not case.finite or np.isfinite(b.diff).all(), "bottom %d diff" % i
    for p in layer.blobs:
        assert not case.finite or np.isfinite(p.diff).all(), "param diff not finite"
    if case.numeric:
        tops = range(len(top)) if case.numeric_tops is None else case.numeric_tops
        weights = [rng.standard_normal(t.shape) * (i in tops) for i, t in enumerate(top)]
        check_gradient(layer, bottom, top, top_weights=weights, threshold=case.threshold,
                       check_bottom=case.grad if case.numeric_bottoms is None
                       else case.numeric_bottoms, check_params=case.params)
    return "ok"
