"""Loss layers: a scalar top (loss_weight 1 by default), labels in bottom 1.

SoftmaxWithLoss, with p = softmax(x) along softmax_param.axis (C classes,
N = outer * inner positions, label l_i at position i, V the positions whose
label is not ignore_label):

  loss = -sum_{i in V} log(max(p_{i, l_i}, FLT_MIN)) / z
  z = max(1, N | |V| | outer | 1) for normalization FULL | VALID | BATCH_SIZE | NONE
  dL/dx_{i,c} = w (p_{i,c} - [c == l_i]) / z for i in V, 0 otherwise

where w is the top diff (the loss weight). Legacy loss_param.normalize, when
normalization is not set, means VALID (true) or BATCH_SIZE (false). The
optional second top is p; its diff is ignored, as in Caffe.

The other losses: the classification ones (Hinge, SigmoidCrossEntropy,
Infogain, MultinomialLogistic) in ``loss_classification.py``, those on the
distance between two bottoms (Euclidean, Contrastive) in ``loss_distance.py``.
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..kernels import loss as loss_kernels
from ..proto import caffe_pb2
from .base import Layer
from .registry import register
from .softmax import canonical_axis, softmax

_Norm = caffe_pb2.LossParameter
FLT_MIN = float(np.finfo(np.float32).tiny)  # Caffe clamps with FLT_MIN for every Dtype


class LossLayer(Layer):
    """Caffe's LossLayer: bottom 0 predictions, bottom 1 targets (no gradient to
    them by force_backward), a scalar top 0."""
    exact_num_bottom = 2
    exact_num_top = 1
    auto_top_blobs = True
    is_loss = True

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        s0, s1 = bottom[0].shape, bottom[1].shape
        if not s0 or not s1 or s0[0] != s1[0]:
            raise self.error("the data and label should have the same first "
                             "dimension (bottom shapes %s and %s)" % (s0, s1))
        top[0].reshape(())

    @staticmethod
    def _top_weight(top):
        """The loss weight Caffe reads back from the top diff."""
        return top[0].diff.reshape(-1)[0]


def _labels(layer, label_data, outer, inner, num_classes, ignore_label):
    """Integer labels (outer, inner) (truncated toward zero, as Caffe's
    static_cast<int>), the mask of counted positions, and safe gather indices."""
    xp = backend.get_array_module(label_data)
    labels = label_data.reshape(outer, inner).astype(np.int64)
    if ignore_label is None:
        valid = xp.ones(labels.shape, dtype=bool)
    else:
        valid = labels != ignore_label
    if bool(xp.any(valid & ((labels < 0) | (labels >= num_classes)))):
        raise _label_error(layer, num_classes, ignore_label)
    return valid, xp.where(valid, labels, 0)


def _label_error(layer, num_classes, ignore_label):
    return layer.error("label values (bottom 1) must be integers in [0, %d)%s" % (
        num_classes, "" if ignore_label is None else " or ignore_label %d" % ignore_label))


def _ignore_label(param):
    return param.ignore_label if param.HasField("ignore_label") else None


@register("SoftmaxWithLoss")
class SoftmaxWithLoss(LossLayer):
    exact_num_top = -1
    min_num_top = 1
    max_num_top = 2

    def layer_setup(self, bottom, top):
        lp = self.param.loss_param
        self.ignore_label = _ignore_label(lp)
        if not lp.HasField("normalization") and lp.HasField("normalize"):
            self.normalization = _Norm.VALID if lp.normalize else _Norm.BATCH_SIZE
        else:
            self.normalization = lp.normalization
        if self.normalization not in (_Norm.FULL, _Norm.VALID, _Norm.BATCH_SIZE,
                                      _Norm.NONE):
            raise self.error("unknown normalization mode %d (expected FULL, VALID, "
                             "BATCH_SIZE or NONE)" % self.normalization)

    def reshape(self, bottom, top):
        super().reshape(bottom, top)
        self.axis = canonical_axis(self, bottom[0], self.param.softmax_param.axis)
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        if self.outer * self.inner != bottom[1].count:
            raise self.error(
                "number of labels must match number of predictions: with softmax "
                "axis %d and prediction shape %s the label count must be %d, got %d "
                "(label shape %s)" % (self.axis, bottom[0].shape,
                                      self.outer * self.inner, bottom[1].count,
                                      bottom[1].shape))
        if len(top) >= 2:
            top[1].reshape(bottom[0].shape)

    def _normalizer(self, valid_count):
        mode = self.normalization
        if mode == _Norm.FULL or (mode == _Norm.VALID and self.ignore_label is None):
            return float(max(1, self.outer * self.inner))
        if mode == _Norm.VALID:
            xp = backend.get_array_module(valid_count)
            return xp.maximum(valid_count, 1)
        if mode == _Norm.BATCH_SIZE:
            return float(max(1, self.outer))
        return 1.0

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        prob = softmax(x, self.axis)
        num_classes = x.shape[self.axis]
        if kernels.active(x):
            nll, count = loss_kernels.softmax_loss_forward(
                prob, bottom[1].data, self.axis, self.ignore_label,
                lambda: _label_error(self, num_classes, self.ignore_label))
            self._norm, self._prob = self._normalizer(count), prob
        else:
            valid, index = _labels(self, bottom[1].data, self.outer, self.inner,
                                   num_classes, self.ignore_label)
            p = xp.take_along_axis(prob.reshape(self.outer, num_classes, self.inner),
                                   index[:, None, :], axis=1)[:, 0, :]
            nll = -xp.where(valid, xp.log(xp.maximum(p, FLT_MIN)), 0).sum()
            self._norm = self._normalizer(valid.sum(dtype=x.dtype))
            self._prob, self._valid, self._index = prob, valid, index
        top[0].data[...] = nll / self._norm
        if len(top) >= 2:
            top[1].data[...] = prob

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("SoftmaxWithLoss cannot backpropagate to label inputs")
        if not propagate_down[0]:
            return
        if kernels.active(self._prob):
            return loss_kernels.softmax_loss_backward(
                self._prob, bottom[1].data, self.axis, self.ignore_label,
                loss_kernels.weight_over(top[0].diff, self._norm), bottom[0].diff)
        xp = backend.get_array_module(self._prob)
        num_classes = self._prob.shape[self.axis]
        p = self._prob.reshape(self.outer, num_classes, self.inner)
        onehot = xp.arange(num_classes)[None, :, None] == self._index[:, None, :]
        grad = (p - onehot) * self._valid[:, None, :]
        weight = self._top_weight(top) / self._norm
        bottom[0].diff[...] = (grad * weight).reshape(bottom[0].shape)
