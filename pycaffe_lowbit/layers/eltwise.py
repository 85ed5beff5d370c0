"""Eltwise: an elementwise operation over two or more bottoms of one shape.

PROD  y = prod_i x_i;  dx_i = dy * prod_{j != i} x_j   (stable_prod_grad, default)
                       dx_i = dy * y / x_i             (stable_prod_grad: false)
SUM   y = sum_i c_i x_i  (coeff c, default all 1);  dx_i = c_i dy
MAX   y = max_i x_i;  dx_i = dy where bottom i won, else 0.  Ties follow Caffe's
      CPU code: bottom 1 beats bottom 0 unless x_0 > x_1, and a later bottom
      (index >= 2) wins only when strictly greater.

SUM's gradient for a coefficient 1 is dy itself. Caffe copies it into each
bottom's diff; on NumPy a bottom in ``share_diff`` (chosen by the Net,
``share_sum_diffs``) gets the top's diff array itself, where nothing that runs
backward afterwards writes into that array: the bottom's producers then only
read it (a Split, the layer that made the blob) or replace it (BatchNorm and
Scale in place). The values every blob shows are Caffe's; the copy, a pass
over the activation per bottom, is saved (ResNet's shortcut sums).
"""
import numpy as np

from .. import kernels
from ..kernels import eltwise as eltwise_kernels
from ..proto import caffe_pb2
from .base import Layer
from .registry import register

_Op = caffe_pb2.EltwiseParameter


@register("Eltwise")
class Eltwise(Layer):
    min_num_bottom = 2
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        ep = self.param.eltwise_param
        if len(ep.coeff) not in (0, len(bottom)):
            raise self.error("Eltwise layer takes one coefficient per bottom blob "
                             "(%d coeff for %d bottoms)" % (len(ep.coeff), len(bottom)))
        if ep.operation == _Op.PROD and len(ep.coeff):
            raise self.error("Eltwise layer only takes coefficients for summation "
                             "(coeff given with operation PROD)")
        self.op = ep.operation
        self.coeffs = list(ep.coeff) if len(ep.coeff) else [1.0] * len(bottom)
        self.stable_prod_grad = ep.stable_prod_grad
        self._mask = None
        self.share_diff = frozenset()     # bottoms given dy itself (share_sum_diffs)

    def reshape(self, bottom, top):
        for i, b in enumerate(bottom[1:], 1):
            if b.shape != bottom[0].shape:
                raise self.error("all bottoms must have the same shape: bottom[0] %s, "
                                 "bottom[%d] %s" % (bottom[0].shape, i, b.shape))
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        xs = [b.data for b in bottom]
        if kernels.active(xs[0]) and self.op in (_Op.PROD, _Op.SUM, _Op.MAX):
            if self.op == _Op.MAX:
                top[0].data, self._mask = eltwise_kernels.maximum(xs)
            else:
                top[0].data = (eltwise_kernels.product(xs) if self.op == _Op.PROD
                               else eltwise_kernels.total(xs, self.coeffs))
            return
        if self.op == _Op.PROD:
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y *= x
        elif self.op == _Op.SUM:
            if self.coeffs[0] == 1 and self.coeffs[1] == 1:
                y, rest = xs[0] + xs[1], 2   # one pass: the bits of a copy, then +=
            else:
                y = self._coeff(0) * xs[0] if self.coeffs[0] != 1 else xs[0].copy()
                rest = 1
            for i, x in enumerate(xs[rest:], rest):
                y += self._coeff(i) * x if self.coeffs[i] != 1 else x
        elif self.op == _Op.MAX:
            xp = bottom[0].xp
            first = xs[0] > xs[1]
            y = xp.where(first, xs[0], xs[1])
            mask = xp.where(first, 0, 1).astype(xp.int32)
            for i, x in enumerate(xs[2:], 2):
                later = x > y
                y = xp.where(later, x, y)
                mask[later] = i
            self._mask = mask
        else:
            raise self.error("unknown elementwise operation %d" % self.op)
        top[0].data = y

    def _kernel_grad(self, i, dy, bottom, top):
        """The kernel path of bottom i's gradient (a new array)."""
        if self.op == _Op.SUM:
            return eltwise_kernels.scaled(dy, self.coeffs[i])
        if self.op == _Op.MAX:
            return eltwise_kernels.max_grad(dy, self._mask, i)
        if self.stable_prod_grad:
            return eltwise_kernels.product([o.data for j, o in enumerate(bottom) if j != i], dy)
        return eltwise_kernels.quotient(top[0].data, bottom[i].data, dy)

    def _coeff(self, i):
        return self.dtype.type(self.coeffs[i])

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        for i, (b, down) in enumerate(zip(bottom, propagate_down)):
            if not down:
                continue
            if kernels.active(dy):
                b.diff = self._kernel_grad(i, dy, bottom, top)
            elif self.op == _Op.PROD:
                if self.stable_prod_grad:
                    others = [o.data for j, o in enumerate(bottom) if j != i]
                    g = others[0].copy()
                    for o in others[1:]:
                        g *= o
                else:
                    g = top[0].data / b.data
                b.diff = g * dy
            elif self.op == _Op.SUM:
                if self.coeffs[i] != 1:
                    b.diff = self._coeff(i) * dy
                elif i in self.share_diff and isinstance(dy, np.ndarray):
                    b.diff = dy
                else:
                    b.diff = dy.copy()
            else:
                b.diff = dy * (self._mask == i).astype(dy.dtype)


# Layers that, run in place on a blob, give their bottom a new diff array in
# backward (never writing into their top's): BatchNorm and Scale on every path.
_REPLACE_DIFF_IN_PLACE = frozenset(("BatchNorm", "Scale"))
# Layers whose bottom diff may be their top diff itself, or a view of it
# (Flatten, Reshape; Concat of one bottom, Slice of one top), and Python
# layers, which may do anything: a shared array would reach further back.
_PASS_DIFF_ON = frozenset(("Flatten", "Reshape", "Concat", "Slice", "Python"))


def share_sum_diffs(layers, bottom_ids, top_ids):
    """Set each SUM Eltwise's ``share_diff``: the bottoms (coefficient 1, not
    the top, not given twice) whose producers are all safe with the top's diff
    array as their top diff: the layer that made the blob, one that hands its
    bottom a diff of its own (not ``_PASS_DIFF_ON``), and after it only
    BatchNorm or Scale in place on it."""
    for e, layer in enumerate(layers):
        if layer.type != "Eltwise" or layer.op != _Op.SUM:
            continue
        share = set()
        ids = list(bottom_ids[e])
        for k, blob in enumerate(ids):
            if layer.coeffs[k] != 1 or blob in top_ids[e] or ids.count(blob) > 1:
                continue
            producers = [j for j in range(e) if blob in top_ids[j]]
            made = [j for j in producers if blob not in bottom_ids[j]]
            in_place = [j for j in producers if blob in bottom_ids[j]]
            if len(made) == 1 and layers[made[0]].type not in _PASS_DIFF_ON and all(
                    layers[j].type in _REPLACE_DIFF_IN_PLACE for j in in_place):
                share.add(k)
        layer.share_diff = frozenset(share)
