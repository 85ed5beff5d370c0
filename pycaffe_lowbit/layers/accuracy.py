"""Accuracy: the fraction of positions whose true label is among the top_k scores.

Scores x along accuracy_param.axis (C classes); labels in bottom 1, one per
position (outer * inner of them). Positions labelled ignore_label are skipped.
As Caffe, ties count against the true label: a position is correct when

  #{k : x_k >= x_label} - 1 < top_k

(the true class itself is one of the ">="). Top 0 = correct / counted (0 when
nothing is counted); optional top 1 (C,) = the same per true class (0 for
classes that do not occur). Forward only: Caffe has no backward.
"""
from .. import kernels
from ..core import backend
from ..kernels import accuracy as accuracy_kernels
from .base import Layer
from .loss import _ignore_label, _label_error, _labels
from .registry import register
from .softmax import canonical_axis


@register("Accuracy")
class Accuracy(Layer):
    exact_num_bottom = 2
    min_num_top = 1
    max_num_top = 2

    def layer_setup(self, bottom, top):
        ap = self.param.accuracy_param
        self.top_k = ap.top_k
        self.ignore_label = _ignore_label(ap)

    def reshape(self, bottom, top):
        self.axis = canonical_axis(self, bottom[0], self.param.accuracy_param.axis)
        # Caffe's count ratio; an empty batch has its classes on the axis
        classes = (bottom[0].count // bottom[1].count if bottom[1].count
                   else bottom[0].shape[self.axis])
        if self.top_k > classes:
            raise self.error("top_k must be less than or equal to the number of "
                             "classes (top_k %d, scores %s, labels %s)"
                             % (self.top_k, bottom[0].shape, bottom[1].shape))
        self.outer = bottom[0].count_range(0, self.axis)
        self.inner = bottom[0].count_range(self.axis + 1)
        if self.outer * self.inner != bottom[1].count:
            raise self.error(
                "number of labels must match number of predictions: with axis %d "
                "and prediction shape %s the label count must be %d, got %d"
                % (self.axis, bottom[0].shape, self.outer * self.inner,
                   bottom[1].count))
        top[0].reshape(())
        if len(top) > 1:
            top[1].reshape((bottom[0].shape[self.axis],))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        num_classes = x.shape[self.axis]
        if kernels.active(x):
            return accuracy_kernels.accuracy(
                x, bottom[1].data, self.axis, self.top_k, self.ignore_label,
                lambda: _label_error(self, num_classes, self.ignore_label),
                top[0].data.reshape(1), top[1].data if len(top) > 1 else None)
        valid, index = _labels(self, bottom[1].data, self.outer, self.inner,
                               num_classes, self.ignore_label)
        scores = x.reshape(self.outer, num_classes, self.inner)
        true = xp.take_along_axis(scores, index[:, None, :], axis=1)
        at_least = (scores >= true).sum(axis=1)
        correct = valid & (at_least - 1 < self.top_k)
        count = valid.sum(dtype=x.dtype)
        top[0].data[...] = correct.sum(dtype=x.dtype) / xp.maximum(count, 1)
        if len(top) > 1:
            flat = index.reshape(-1)
            per_class = xp.bincount(flat, weights=valid.reshape(-1).astype(x.dtype),
                                    minlength=num_classes)
            hits = xp.bincount(flat, weights=correct.reshape(-1).astype(x.dtype),
                               minlength=num_classes)
            top[1].data[...] = hits / xp.maximum(per_class, 1)

    def backward(self, top, propagate_down, bottom):
        if any(propagate_down):
            raise NotImplementedError("layer '%s' (Accuracy): backward is not "
                                      "implemented (as in Caffe)" % self.name)
