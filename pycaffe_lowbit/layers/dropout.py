"""Dropout with ratio p: each value is kept with probability 1 - p.

TRAIN  y = x * m / (1 - p)      m ~ Bernoulli(1 - p), drawn at every forward
TEST   y = x
With ``scale_train: false`` (NVIDIA/Intel Caffe's field, in our schema):
TRAIN  y = x * m,   TEST  y = x * (1 - p).
Backward applies the same factor to dy. Bottom: any shape; top: same shape.
In-place allowed (backward needs only the mask).

The mask comes from the library's seeded generator (``backend.rng()``) on the
host and from ``cupy.random`` on the device, so it matches Caffe in
distribution, not draw by draw.
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..kernels.neuron import elementwise as _launch
from ..proto import caffe_pb2
from .base import Layer
from .registry import register


@register("Dropout")
class Dropout(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        dp = self.param.dropout_param
        self.ratio = float(dp.dropout_ratio)
        if not 0.0 <= self.ratio < 1.0:
            raise self.error("dropout_ratio must be in [0, 1), got %g" % self.ratio)
        self.scale_train = bool(dp.scale_train)
        self._mask = None

    @property
    def _train(self):
        return self.phase == caffe_pb2.TRAIN

    def _factor(self):
        """The multiplier of the kept values (TRAIN) or of all values (TEST)."""
        # Caffe: scale_ = 1. / (1. - p) in double, stored in the blob's type.
        one = self.dtype.type(1.0)
        scale = self.dtype.type(1.0 / (1.0 - self.ratio))
        if self._train:
            return scale if self.scale_train else one
        return one if self.scale_train else self.dtype.type(1.0 / float(scale))

    def draw_mask(self, shape, xp):
        """Boolean keep-mask, True with probability 1 - ratio."""
        if xp is np:
            u = backend.rng().random(shape)
        else:
            u = xp.random.random_sample(shape)
        return u >= self.ratio

    def _apply(self, a, factor):
        """The kernel path of TRAIN: a new array a * (mask ? factor : 0)."""
        out = backend.get_array_module(a).empty_like(a)
        _launch("dropout_apply", a, self._mask.astype(bool, copy=False), out, factor)
        return out

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        factor = self._factor()
        if self._train:
            xp = bottom[0].xp
            self._mask = self.draw_mask(x.shape, xp)
            if kernels.active(x):
                top[0].data = self._apply(x, factor)
                return
            top[0].data = x * (self._mask.astype(x.dtype) * factor)
        elif factor != 1 and kernels.active(x):
            top[0].data = y = bottom[0].xp.empty_like(x)
            _launch("dropout_scale", x, y, factor)
        elif factor == 1:
            if top[0] is not bottom[0]:
                top[0].data = x.copy()
        else:
            top[0].data = x * factor

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = top[0].diff
        factor = self._factor()
        if self._train and kernels.active(dy):
            bottom[0].diff = self._apply(dy, factor)
        elif self._train:
            bottom[0].diff = dy * (self._mask.astype(dy.dtype) * factor)
        elif factor != 1 and kernels.active(dy):
            bottom[0].diff = dx = top[0].xp.empty_like(dy)
            _launch("dropout_scale", dy, dx, factor)
        elif factor == 1:
            if top[0] is not bottom[0]:
                bottom[0].diff = dy.copy()
        else:
            bottom[0].diff = dy * factor
