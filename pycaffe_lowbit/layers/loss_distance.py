"""Losses on the distance between two bottoms, as BVLC Caffe (9b89154)
computes them; w is the top's diff (the loss weight), n = bottom[0].shape[0].

EuclideanLoss (a, b of the same count per item):

  loss = sum((a - b)^2) / n / 2,   dL/da = w (a - b) / n,   dL/db = -dL/da

ContrastiveLoss (a, b (n, C), similarity y (n,); d_i = ||a_i - b_i||):

  similar (int(y_i) != 0):  loss_i = d_i^2
  dissimilar:  max(margin - d_i, 0)^2,  legacy_version: max(margin - d_i^2, 0)
  loss = sum_i loss_i / n / 2
  da_i = -db_i = (w / n) * (a_i - b_i) for similar pairs; for dissimilar pairs
  with a positive margin term, -(w / n) (a_i - b_i) (legacy) or
  -(w / n) (margin - d_i) / (d_i + 1e-4) (a_i - b_i) (Caffe's epsilon), else 0.
  No gradient to y.
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..kernels import loss as loss_kernels
from .loss import LossLayer
from .registry import register


@register("EuclideanLoss")
class EuclideanLoss(LossLayer):
    def allow_force_backward(self, bottom_index):
        return True

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count_range(1) != bottom[1].count_range(1):
            raise self.error("inputs must have the same dimension: bottom shapes "
                             "%s and %s" % (bottom[0].shape, bottom[1].shape))

    def forward(self, bottom, top):
        if kernels.active(bottom[0].data):
            diff = loss_kernels.difference(bottom[0].data, bottom[1].data)
            self._diff = diff
            top[0].data[...] = bottom[0].xp.vdot(diff, diff) / bottom[0].num / 2.0
            return
        diff = bottom[0].data - bottom[1].data.reshape(bottom[0].shape)
        self._diff = diff
        top[0].data[...] = (diff * diff).sum() / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        w = self._top_weight(top)
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i] and kernels.active(self._diff):
                loss_kernels.scaled(self._diff, top[0].diff, sign, bottom[i].num, bottom[i].diff)
            elif propagate_down[i]:
                alpha = sign * w / bottom[i].num
                bottom[i].diff[...] = (alpha * self._diff).reshape(bottom[i].shape)


@register("ContrastiveLoss")
class ContrastiveLoss(LossLayer):
    exact_num_bottom = 3

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        a, b, y = bottom
        for blob, what in ((a, "bottom 0"), (b, "bottom 1"), (y, "bottom 2")):
            if blob.num_axes > 4 or blob.height != 1 or blob.width != 1:
                raise self.error("%s must be (N, C, 1, 1), got shape %s"
                                 % (what, blob.shape))
        if a.channels != b.channels:
            raise self.error("the two feature bottoms must have the same channels "
                             "(shapes %s and %s)" % (a.shape, b.shape))
        if y.channels != 1 or y.count != a.num:
            raise self.error("the similarity bottom must hold one value per pair "
                             "(shape (%d, 1, 1, 1)), got shape %s" % (a.num, y.shape))

    def forward(self, bottom, top):
        cp = self.param.contrastive_loss_param
        a = bottom[0].data
        xp = backend.get_array_module(a)
        num = bottom[0].num
        if kernels.active(a):
            self._diff, self._dist_sq, total = loss_kernels.contrastive_forward(
                a.reshape(num, -1), bottom[1].data, bottom[2].data, cp.margin,
                cp.legacy_version)
            top[0].data[...] = total / num / 2.0
            return
        diff = (a - bottom[1].data).reshape(num, -1)
        dist_sq = (diff * diff).sum(axis=1)
        similar = bottom[2].data.reshape(-1).astype(np.int64) != 0
        if cp.legacy_version:
            dissim = xp.maximum(cp.margin - dist_sq, 0)
        else:
            dissim = xp.maximum(cp.margin - xp.sqrt(dist_sq), 0) ** 2
        self._diff, self._dist_sq, self._similar = diff, dist_sq, similar
        top[0].data[...] = xp.where(similar, dist_sq, dissim).sum() / num / 2.0

    def backward(self, top, propagate_down, bottom):
        if propagate_down[2]:
            raise self.error("ContrastiveLoss Layer cannot backpropagate to the "
                             "similarity input.")
        cp = self.param.contrastive_loss_param
        xp = backend.get_array_module(self._diff)
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i] and kernels.active(self._diff):
                loss_kernels.contrastive_backward(
                    self._diff, self._dist_sq, bottom[2].data, cp.margin, cp.legacy_version,
                    top[0].diff, sign, bottom[i].num, bottom[i].diff)
        if kernels.active(self._diff):
            return
        if cp.legacy_version:
            mdist = cp.margin - self._dist_sq
            beta = -xp.ones_like(mdist)
        else:
            dist = xp.sqrt(self._dist_sq)
            mdist = cp.margin - dist
            beta = -mdist / (dist + 1e-4)
        coef = xp.where(self._similar, 1.0, xp.where(mdist > 0, beta, 0.0))
        g = self._diff * coef[:, None].astype(self._diff.dtype)
        for i, sign in ((0, 1.0), (1, -1.0)):
            if propagate_down[i]:
                alpha = sign * self._top_weight(top) / bottom[i].num
                bottom[i].diff[...] = (alpha * g).reshape(bottom[i].shape)
