"""Classification losses beside SoftmaxWithLoss (``loss.py``), as BVLC Caffe
(9b89154) computes them. Every one has a
scalar top (loss_weight 1 by default); w below is that top's diff (the loss
weight) and n = bottom[0].shape[0].

HingeLoss (scores x (n, D), labels l (n,)); s_ij = -1 if j == l_i else +1:

  t_ij = max(0, 1 + s_ij x_ij)
  L1: loss = sum t / n,     dx_ij = w s_ij sign(t_ij) / n
  L2: loss = sum t^2 / n,   dx_ij = 2 w s_ij t_ij / n

SigmoidCrossEntropyLoss (logits x, targets t in [0, 1], same count), over the
positions V whose int(t) != ignore_label:

  loss = -sum_V [x (t - [x >= 0]) - log(1 + exp(-|x|))] / z
  dx = w (sigmoid(x) - t) / z on V, 0 elsewhere
  z = max(1, count | |V| | n | 1) for FULL | VALID | BATCH_SIZE | NONE;
  default BATCH_SIZE; legacy normalize: true -> VALID, false -> BATCH_SIZE.

InfogainLoss (scores x, labels l, H (C x C) from a third bottom or from
infogain_loss_param.source), p = softmax(x) along infogain_loss_param.axis:

  loss = -sum_{i in V} sum_c H[l_i, c] log(max(p_ic, 1e-20)) / z
  dx_ic = w (p_ic sum_k H[l_i, k] - H[l_i, c]) / z for i in V, 0 otherwise
  z as above (default VALID; the legacy normalize field is refused, as Caffe).
  An optional second top holds p. No gradient to labels or H.

MultinomialLogisticLoss (probabilities p (n, D), labels l):

  loss = -sum_i log(max(p_{i,l_i}, 1e-20)) / n,
  dp_{i,l_i} = -w / (n max(p_{i,l_i}, 1e-20)), 0 elsewhere
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..kernels import loss as loss_kernels
from ..proto import caffe_pb2
from .loss import LossLayer, _ignore_label, _label_error, _labels
from .registry import register
from .softmax import canonical_axis, softmax

_Norm = caffe_pb2.LossParameter
_Hinge = caffe_pb2.HingeLossParameter
LOG_THRESHOLD = 1e-20  # Caffe's kLOG_THRESHOLD


def _normalizer(mode, outer, inner, valid_count):
    """Caffe's get_normalizer: the loss divisor, at least 1."""
    if mode == _Norm.FULL:
        z = outer * inner
    elif mode == _Norm.VALID:
        z = valid_count
    elif mode == _Norm.BATCH_SIZE:
        z = outer
    else:
        z = 1
    return float(max(1, z))


@register("HingeLoss")
class HingeLoss(LossLayer):
    def layer_setup(self, bottom, top):
        self.norm = self.param.hinge_loss_param.norm
        if self.norm not in (_Hinge.L1, _Hinge.L2):
            raise self.error("Unknown Norm %d (expected L1 or L2)" % self.norm)

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[1].count != bottom[0].shape[0]:
            raise self.error("needs one label per item: %d labels for scores of "
                             "shape %s" % (bottom[1].count, bottom[0].shape))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        num = x.shape[0]
        x = x.reshape(num, -1)
        dim = x.shape[1]
        if kernels.active(x):
            t = self._t = loss_kernels.hinge_forward(x, bottom[1].data,
                                                     lambda: _label_error(self, dim, None))
            top[0].data[...] = (t.sum() if self.norm == _Hinge.L1 else xp.vdot(t, t)) / num
            return
        _, index = _labels(self, bottom[1].data, num, 1, dim, None)
        sign = xp.where(xp.arange(dim)[None, :] == index, -1.0, 1.0).astype(x.dtype)
        t = xp.maximum(1 + sign * x, 0)
        self._sign, self._t = sign, t
        total = t.sum() if self.norm == _Hinge.L1 else (t * t).sum()
        top[0].data[...] = total / num

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("HingeLoss Layer cannot backpropagate to label inputs.")
        if not propagate_down[0]:
            return
        xp = backend.get_array_module(self._t)
        if kernels.active(self._t):
            return loss_kernels.hinge_backward(
                self._t, bottom[1].data, self.norm == _Hinge.L2,
                loss_kernels.weight_over(top[0].diff, bottom[0].shape[0]), bottom[0].diff)
        scale = self._top_weight(top) / bottom[0].shape[0]
        if self.norm == _Hinge.L1:
            g = xp.sign(self._t) * self._sign * scale
        else:
            g = self._t * self._sign * (2 * scale)
        bottom[0].diff[...] = g.reshape(bottom[0].shape)


@register("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLoss(LossLayer):
    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.ignore_label = _ignore_label(lp)
        if lp.HasField("normalization"):
            self.normalization = lp.normalization
        elif lp.HasField("normalize"):
            self.normalization = _Norm.VALID if lp.normalize else _Norm.BATCH_SIZE
        else:
            self.normalization = _Norm.BATCH_SIZE

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[0].count != bottom[1].count:
            raise self.error("SIGMOID_CROSS_ENTROPY_LOSS layer inputs must have the "
                             "same count (shapes %s and %s)"
                             % (bottom[0].shape, bottom[1].shape))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        t = bottom[1].data.reshape(x.shape)
        if kernels.active(x):
            total, count = loss_kernels.sigmoid_xent_forward(x, t, self.ignore_label)
            self._norm = _normalizer(self.normalization, x.shape[0], bottom[0].count_range(1),
                                     count)
            top[0].data[...] = total / self._norm
            return
        if self.ignore_label is None:
            valid = None
            count = x.size
        else:
            valid = t.astype(np.int64) != self.ignore_label
            count = int(valid.sum())
        elem = x * (t - (x >= 0)) - xp.log1p(xp.exp(-xp.abs(x)))
        if valid is not None:
            elem = xp.where(valid, elem, 0)
        self._valid = valid
        self._norm = _normalizer(self.normalization, x.shape[0],
                                 bottom[0].count_range(1), count)
        top[0].data[...] = -elem.sum() / self._norm

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("SigmoidCrossEntropyLoss Layer cannot backpropagate to "
                             "label inputs.")
        if not propagate_down[0]:
            return
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if kernels.active(x):
            return loss_kernels.sigmoid_xent_backward(
                x, bottom[1].data, self.ignore_label,
                loss_kernels.weight_over(top[0].diff, self._norm), bottom[0].diff)
        g = (0.5 * xp.tanh(0.5 * x) + 0.5) - bottom[1].data.reshape(x.shape)
        if self._valid is not None:
            g = xp.where(self._valid, g, 0)
        bottom[0].diff[...] = g * (self._top_weight(top) / self._norm)


@register("InfogainLoss")
class InfogainLoss(LossLayer):
    exact_num_bottom = -1
    min_num_bottom = 2
    max_num_bottom = 3
    exact_num_top = -1
    min_num_top = 1
    max_num_top = 2

    def allow_force_backward(self, bottom_index):
        return bottom_index == 0

    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.ignore_label = _ignore_label(lp)
        if lp.HasField("normalize"):
            raise self.error('normalize is deprecated. use "normalization"')
        self.normalization = lp.normalization
        self._h_file = None
        if len(bottom) < 3:
            source = self.param.infogain_loss_param.source
            if not source:
                raise self.error("Infogain matrix source must be specified "
                                 "(infogain_loss_param.source, or a third bottom)")
            from ..formats.caffemodel import read_blobproto
            self._h_file = np.asarray(read_blobproto(source), dtype=self.dtype)
            self._h_dev = None

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.axis = canonical_axis(self, bottom[0], self.param.infogain_loss_param.axis)
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        self.num_labels = bottom[0].shape[self.axis]
        if self.outer * self.inner != bottom[1].count:
            raise self.error(
                "Number of labels must match number of predictions: with infogain "
                "axis %d and prediction shape %s the label count must be %d, got %d"
                % (self.axis, bottom[0].shape, self.outer * self.inner,
                   bottom[1].count))
        h_count = bottom[2].count if len(bottom) == 3 else self._h_file.size
        if h_count != self.num_labels ** 2:
            raise self.error("H (%s) must be %dx%d (%d values), got %d values"
                             % ("bottom 2" if len(bottom) == 3 else "infogain_loss_param.source",
                                self.num_labels, self.num_labels,
                                self.num_labels ** 2, h_count))
        if len(top) >= 2:
            top[1].reshape(bottom[0].shape)

    def _h(self, bottom, xp):
        if len(bottom) == 3:
            h = bottom[2].data
        else:
            if self._h_dev is None or backend.get_array_module(self._h_dev) is not xp:
                self._h_dev = backend.to_device(self._h_file, xp)
            h = self._h_dev
        return h.reshape(self.num_labels, self.num_labels)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        c = self.num_labels
        prob = softmax(x, self.axis)
        if kernels.active(x):
            loss, self._count = loss_kernels.infogain_forward(
                prob, bottom[1].data, self._h(bottom, xp), self.axis, self.ignore_label,
                lambda: _label_error(self, c, self.ignore_label))
            self._prob = prob
        else:
            p = prob.reshape(self.outer, c, self.inner)
            valid, index = _labels(self, bottom[1].data, self.outer, self.inner, c,
                                   self.ignore_label)
            h_rows = self._h(bottom, xp)[index].transpose(0, 2, 1)  # (outer, C, inner)
            logp = xp.log(xp.maximum(p, x.dtype.type(LOG_THRESHOLD)))
            loss = -(h_rows * logp * valid[:, None, :]).sum()
            self._count = int(valid.sum())
            self._prob, self._valid, self._index = prob, valid, index
        top[0].data[...] = loss / _normalizer(self.normalization, self.outer,
                                              self.inner, self._count)
        if len(top) >= 2:
            top[1].data[...] = prob

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("InfogainLoss Layer cannot backpropagate to label inputs.")
        if len(propagate_down) > 2 and propagate_down[2]:
            raise self.error("InfogainLoss Layer cannot backpropagate to infogain "
                             "inputs.")
        if not propagate_down[0]:
            return
        xp = backend.get_array_module(self._prob)
        h = self._h(bottom, xp)
        z = _normalizer(self.normalization, self.outer, self.inner, self._count)
        if kernels.active(h):
            return loss_kernels.infogain_backward(
                self._prob, bottom[1].data, h, self.axis, self.ignore_label,
                loss_kernels.weight_over(top[0].diff, z), bottom[0].diff)
        p = self._prob.reshape(self.outer, self.num_labels, self.inner)
        row_sums = h.sum(axis=1)[self._index]  # (outer, inner)
        g = p * row_sums[:, None, :] - h[self._index].transpose(0, 2, 1)
        g = g * self._valid[:, None, :]
        bottom[0].diff[...] = (g * (self._top_weight(top) / z)).reshape(bottom[0].shape)


@register("MultinomialLogisticLoss")
class MultinomialLogisticLoss(LossLayer):
    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        if bottom[1].count != bottom[0].shape[0]:
            raise self.error("needs one label per item (label shape (n, 1, 1, 1)): "
                             "%d labels for probabilities of shape %s"
                             % (bottom[1].count, bottom[0].shape))

    def _picked(self, bottom):
        p = bottom[0].data
        xp = backend.get_array_module(p)
        num = p.shape[0]
        p = p.reshape(num, -1)
        _, index = _labels(self, bottom[1].data, num, 1, p.shape[1], None)
        picked = xp.take_along_axis(p, index, axis=1)[:, 0]
        return index, xp.maximum(picked, p.dtype.type(LOG_THRESHOLD))

    def forward(self, bottom, top):
        xp = backend.get_array_module(bottom[0].data)
        if kernels.active(bottom[0].data):
            p = bottom[0].data.reshape(bottom[0].shape[0], -1)
            total = loss_kernels.multinomial_forward(
                p, bottom[1].data, lambda: _label_error(self, p.shape[1], None))
            top[0].data[...] = total / bottom[0].shape[0]
            return
        _, picked = self._picked(bottom)
        top[0].data[...] = -xp.log(picked).sum() / bottom[0].shape[0]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("MultinomialLogisticLoss Layer cannot backpropagate to "
                             "label inputs.")
        if not propagate_down[0]:
            return
        xp = backend.get_array_module(bottom[0].data)
        num = bottom[0].shape[0]
        if kernels.active(bottom[0].data):
            return loss_kernels.multinomial_backward(
                bottom[0].data.reshape(num, -1), bottom[1].data,
                loss_kernels.weight_over(-top[0].diff, num), bottom[0].diff)
        index, picked = self._picked(bottom)
        dim = bottom[0].count // max(num, 1)
        onehot = xp.arange(dim)[None, :] == index
        scale = -self._top_weight(top) / num
        g = xp.where(onehot, (scale / picked)[:, None], 0)
        bottom[0].diff[...] = g.reshape(bottom[0].shape)
