"""MVN: mean-variance normalization, as BVLC Caffe computes it.

Bottom: up to 4 axes (Caffe's legacy num/channels/height/width; missing axes
count as 1). Top: (N, C, H, W) -- a 2-D (N, C) bottom gives an (N, C, 1, 1)
top, as in Caffe. Values are normalized over groups of ``dim`` elements: each
(n, c) plane of H*W values, or with ``across_channels`` each sample's C*H*W
values.

    mean = E[x]                          y = x - mean
    with normalize_variance (default):
    s = sqrt(E[(x - mean)^2]) + eps      y = (x - mean) / s

Backward (Caffe's formula; the exact gradient when eps = 0):

    without variance:   dx = dy - E[dy]
    with variance:      dx = (dy - E[dy] - y * E[y * dy]) / s
"""
from .. import kernels
from ..core import backend
from ..kernels import normalization as norm_kernels
from .base import Layer
from .registry import register


@register("MVN")
class MVN(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        mp = self.param.mvn_param
        self.normalize_variance = mp.normalize_variance
        self.across_channels = mp.across_channels
        self.eps = float(mp.eps)

    def reshape(self, bottom, top):
        b = bottom[0]
        if b.num_axes > 4:
            raise self.error("takes a bottom of at most 4 axes (num, channels, height, "
                             "width); got shape %s" % (b.shape,))
        top[0].reshape(b.num, b.channels, b.height, b.width)
        self.groups = b.num if self.across_channels else b.num * b.channels
        self.dim = b.height * b.width * (b.channels if self.across_channels else 1)

    def _grouped(self, a):
        return a.reshape(self.groups, self.dim)   # (not -1: an empty batch has 0 groups)

    def forward(self, bottom, top):
        x = self._grouped(bottom[0].data)
        if kernels.active(x):
            y, self._scale = norm_kernels.mvn_forward(x, self.dtype.type(self.eps),
                                                      self.normalize_variance)
            top[0].data = y.reshape(top[0].shape)
            return
        y = x - x.mean(axis=1, keepdims=True)
        if self.normalize_variance:
            xp = backend.get_array_module(x)
            var = (y * y).mean(axis=1, keepdims=True)
            self._scale = xp.sqrt(var) + self.dtype.type(self.eps)
            y = y / self._scale
        top[0].data = y.reshape(top[0].shape).astype(self.dtype, copy=False)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        dy = self._grouped(top[0].diff)
        if kernels.active(dy):
            dx = norm_kernels.mvn_backward(dy, self._grouped(top[0].data),
                                           self._scale if self.normalize_variance else None)
            bottom[0].diff = dx.reshape(bottom[0].shape)
            return
        dx = dy - dy.mean(axis=1, keepdims=True)
        if self.normalize_variance:
            y = self._grouped(top[0].data)
            dx -= y * (y * dy).mean(axis=1, keepdims=True)
            dx /= self._scale
        bottom[0].diff = dx.reshape(bottom[0].shape).astype(self.dtype, copy=False)
