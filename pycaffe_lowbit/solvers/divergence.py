"""Divergence: what the solver does when training goes non-finite (ours).

``solver.nan_effect`` (the CLI's ``--nan_effect``; ``"none"`` by default in
the library, as Caffe):

* ``"none"``: Caffe's behaviour: nothing is checked, training goes on with
  NaN or infinite weights.
* ``"stop"``: before each update the iteration's loss (the mean over the
  ``iter_size`` passes, before smoothing) and every learnable param's
  gradient must be finite, and then the update values
  (after the rule, before ``data -= diff``). When one is not, the update is
  not applied, training stops, and one error line names the iteration, what
  went non-finite and where it began (below); no snapshot is written, so the
  last snapshot on disk is the last finite one (named in the line).
* ``"snapshot"``: the same, after writing a snapshot of the weights as they
  are (still finite: the bad update was refused) at that iteration, unless the
  rule's history (momentum...) went non-finite too.

Where it began: in forward order, the first layer with a non-finite top
(its output); when every output is finite, the layer where the gradient went
non-finite: the first the backward pass reached (the last in forward order)
with a non-finite bottom or param gradient; for an update, the first param
whose update value is not finite.

The check is one sum per param blob (a NaN or an infinity makes the sum
non-finite; an overflowing sum of finite values is told apart by an exact
test), so it costs a pass over the gradients per iteration.
"""
import logging
import math

import numpy as np

from ..core import backend

log = logging.getLogger("pycaffe_lowbit")

NAN_EFFECTS = ("stop", "snapshot", "none")


def all_finite(array):
    """True when every value of ``array`` (NumPy or CuPy) is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if array.size == 0 or math.isfinite(float(array.sum())):
            return True
    return bool(backend.get_array_module(array).isfinite(array).all())


def _layer_desc(net, i):
    return "layer '%s' (%s)" % (net._layer_names[i], net.layers[i].type)


def where_it_began(net):
    """The layer (and blob) where non-finite values begin, as a phrase."""
    for i in range(len(net.layers)):
        for k in net._top_id_vecs[i]:
            blob = net._blobs[k]
            if not all_finite(blob.data):
                return "%s: output '%s' went non-finite" % (_layer_desc(net, i),
                                                            net._blob_names[k])
    for i in range(len(net.layers) - 1, -1, -1):
        for j, k in enumerate(net._bottom_id_vecs[i]):
            blob = net._blobs[k]
            if net._bottom_need_backward[i][j] and blob.has_diff \
                    and not all_finite(blob.diff):
                return "%s: gradient of bottom '%s' went non-finite" % (
                    _layer_desc(net, i), net._blob_names[k])
        for j, blob in enumerate(net.layers[i].blobs):
            if blob.has_diff and not all_finite(blob.diff):
                return "%s: gradient of param %d went non-finite" % (_layer_desc(net, i), j)
    return "no layer's output or gradient is non-finite now"


def check_before_update(solver, loss):
    """The reason (a phrase) when the iteration's loss or a gradient is not
    finite, else None."""
    net = solver.net
    if not math.isfinite(float(loss)):
        return "loss is %s; %s" % (float(loss), where_it_began(net))
    if not all(all_finite(blob.diff) for blob in net.learnable_params):
        return "a gradient is not finite; %s" % where_it_began(net)
    return None


def check_update(solver):
    """The reason when an update value (the learnable params' diffs after the
    rule) is not finite, else None."""
    net = solver.net
    for index, blob in enumerate(net.learnable_params):
        if not all_finite(blob.diff):
            layer_id, k = _owner(net, blob)
            return ("the update of %s param %d is not finite (loss and gradients are); "
                    "lower base_lr or clip_gradients" % (_layer_desc(net, layer_id), k))
    return None


def _owner(net, blob):
    for layer_id, layer in enumerate(net.layers):
        for k, b in enumerate(layer.blobs):
            if b is blob:
                return layer_id, k
    return 0, 0


def diverged(solver, reason):
    """Stop ``solver`` for ``reason`` (and snapshot first with effect
    "snapshot"); logs the one error line."""
    from .snapshot import snapshot
    effect = solver.nan_effect
    wrote = ""
    if effect == "snapshot":
        if all(all_finite(b.data) for b in solver.history):
            snapshot(solver)
            wrote = "; wrote a snapshot of the last finite weights"
        else:
            wrote = "; no snapshot written (the solver history is not finite)"
    last = solver.last_snapshot
    solver.diverged = "Iteration %d: %s; stopped (--nan_effect=%s)%s; last snapshot: %s" % (
        solver.iter, reason, effect, wrote,
        last + " (resume with --snapshot %s)" % last if last else "none written")
    solver.requested_early_exit = True
    log.error("%s", solver.diverged)
