"""BatchNorm followed in place by Scale (and a ReLU), one pass each way on the CPU.

The ResNet pattern ``conv -> BatchNorm (in place) -> Scale (in place)`` costs,
as two layers, eight passes over the activation forward (statistics 2,
normalise 3, Scale's copy of its input and its output 3) and eleven backward.
Run as a pair, with x viewed as (N, C, L), s and b Scale's blobs:

  forward   mean, std as BatchNorm computes them (and the same running-statistics
            update, one pass over x); then, in one pass, xn = (x - mean) / std
            and y = xn s + b. x itself is kept for the backward, where xn is
            recomputed (the blob gets y, a new array, so x's array is left as
            it was): no xn written
  backward  one pass of per-(n, c) sums: sum dy, sum dy xn (Scale's ds, db and,
            times s, BatchNorm's mean(g), mean(g xn) with g = dy s);
            one pass: dx = (g - (mean(g xn) xn + mean(g))) / std
            (global statistics: dx = g / std)

A ReLU in place on the same blob right after the Scale joins them: the
forward writes relu(y), the backward takes dy through ReLU's backward first
(its mask y > 0 recomputed from xn, as the forward made y; the ReLU's own
backward reads it from the blob, where nothing changes it in between).

The results are the layers' to float rounding: the forward is the same
arithmetic, bit for bit; the backward's BatchNorm sums are s * sum(dy ...)
rather than sum((dy s) ...), about 1e-7 relative apart.

When a net runs the pair (``Net.forward_from_to`` / ``backward_from_to`` over a
range holding both layers), a later pass of either layer alone
(``forward_from_to(i, i)``, ``lowbit-caffe time``) first asks the pair for the
state the layer's own forward would have left (``materialize``: BatchNorm's
x_norm buffer, Scale's saved input), so it works and gives the same numbers.
The pair runs only where everything holds: NumPy arrays with Numba on, a learned Scale over axis 1 with one channel per
BatchNorm channel (its bias, if any, too), both in place on one blob, and no
``debug_info`` (whose lines name each layer's own top); otherwise each layer
runs on its own. ``LOWBIT_FUSE=0`` turns pairs off (and, read when a Net is
made, Eltwise's shared diffs: ``eltwise.share_sum_diffs``).
"""
import os

import numpy as np

from .. import kernels
from ..cpu import jit, norm as cpu_norm


def fusion_enabled():
    """Pairs (and shared SUM diffs) are on unless ``LOWBIT_FUSE=0``."""
    return os.environ.get("LOWBIT_FUSE", "1") != "0"


def find_pairs(layers, bottom_ids, top_ids):
    """{index of the BatchNorm: BatchNormScalePair} for each BatchNorm whose next
    layer is a Scale, both in place on the same single blob, the Scale learning
    its factor over exactly the channel axis; the pair's ``relu`` is the ReLU
    that follows in place on that blob, if one does."""
    def in_place_on(k, ids):
        return list(bottom_ids[k]) == ids and list(top_ids[k]) == ids \
            and not any(layers[k].loss_weights)

    pairs = {}
    for i in range(len(layers) - 1):
        bn, sc = layers[i], layers[i + 1]
        if bn.type != "BatchNorm" or sc.type != "Scale":
            continue
        ids = list(bottom_ids[i])
        if len(ids) != 1 or not (in_place_on(i, ids) and in_place_on(i + 1, ids)):
            continue
        if len(sc.blobs) < 1 or sc.blobs[0].shape != (bn.channels,):
            continue
        relu = layers[i + 2] if i + 2 < len(layers) else None
        if relu is not None and not (relu.type == "ReLU" and in_place_on(i + 2, ids)):
            relu = None
        pairs[i] = BatchNormScalePair(bn, sc, relu)
    return pairs


class BatchNormScalePair:
    """The layers' forward and backward as one (see the module's docstring)."""

    def __init__(self, bn, scale, relu=None):
        self.bn = bn
        self.scale = scale
        self.relu = relu
        self._saved = None      # (x, mean, std) of the last fused forward

    def runs(self, blob):
        """The fused passes apply to this blob now (its arrays, the layers'
        current dims); decided at each pass, so a reshape or a mode change
        simply falls back to the layers one by one."""
        x = blob.data
        bn, sc = self.bn, self.scale
        return (fusion_enabled() and jit.runs(x) and not kernels.active(x)
                and x.dtype == bn.dtype and bn._dims[0] * bn._dims[2] > 0
                and sc._dims == bn._dims and sc._compiled(x, [blob]))

    def _slope(self, with_relu):
        return self.bn.dtype.type(self.relu.negative_slope if with_relu else 0)

    def forward(self, blob, with_relu=False):
        """The layers' forward on the blob they share (reshaped already):
        BatchNorm and Scale, and the ReLU with ``with_relu``. xn is not
        written: the input x is kept (the blob gets y, a new array), with the
        mean and std, and xn recomputed from them where needed."""
        bn, sc = self.bn, self.scale
        dims = bn._dims
        x = np.ascontiguousarray(blob.data.reshape(dims))
        mean, std = bn.statistics_for_pair(x)
        y = np.empty(dims, x.dtype)             # the blob's new array, as each layer's
        cpu_norm.bn_scale_forward(x, mean, std, sc.blobs[0].data.reshape(-1), self._bias(), y,
                                  with_relu, self._slope(with_relu))
        self._saved = (x, mean, std)
        bn._pair_pending = sc._pair_pending = self
        sc._x = None
        blob.data = y.reshape(blob.shape)

    def materialize(self):
        """Give the two layers the state their own forward would have left (xn
        in BatchNorm's buffer and as Scale's saved input), from the kept x;
        called by either layer before a pass of its own."""
        if self._saved is None:
            return
        x, mean, std = self._saved
        xn = self.bn._x_norm_buffer(np)
        cpu_norm.bn_normalize(x, mean, std, xn, xn)
        self.scale._x = xn
        self._saved = None
        self.bn._pair_pending = self.scale._pair_pending = None

    def _bias(self):
        sc = self.scale
        return (sc._bias.blobs[0].data.reshape(-1) if sc._bias is not None
                else np.zeros(self.bn._dims[1], self.bn.dtype))

    def backward(self, blob, propagate_down, with_relu=False):
        """The layers' backward (the ReLU's too with ``with_relu``: the blob's
        diff is then its top diff); ``propagate_down``: BatchNorm's bottom
        needs a diff (the others' bottoms are the same blob). False, having
        done nothing, where the last forward (the layers' own) kept no xn and
        this needs it (global statistics, no scale gradient)."""
        bn, sc = self.bn, self.scale
        dims, dt = bn._dims, bn.dtype
        none = np.empty(0, dt)
        want_s = sc.param_propagate_down[0]
        want_b = sc._bias is not None and sc.param_propagate_down[-1]
        batch = not bn.use_global_stats
        if self._saved is not None:
            src, centre, spread = self._saved
        else:
            src = bn._y if batch else sc._x
            centre, spread = np.zeros(dims[1], dt), np.ones(dims[1], dt)
            if src is None:
                if with_relu or want_s:
                    return False
                src = np.empty((0, 0, 0), dt)
        for param in sc.blobs[:2 if want_b else 1]:
            if not param.diff.flags.c_contiguous:   # accumulate through a view
                param.diff = np.ascontiguousarray(param.diff)
        dy = np.ascontiguousarray(blob.diff.reshape(dims))
        dx = np.empty(dims, dt) if propagate_down else np.empty((0, 0, 0), dt)
        cpu_norm.bn_scale_backward(
            dy, src.reshape(dims) if src.size else src, centre, spread,
            sc.blobs[0].data.reshape(-1), self._bias(), bn._std.reshape(-1),
            sc.blobs[0].diff.reshape(-1) if want_s else none,
            sc._bias.blobs[0].diff.reshape(-1) if want_b else none, dx, batch,
            with_relu, self._slope(with_relu))
        if propagate_down:
            blob.diff = dx.reshape(blob.shape)
        return True
