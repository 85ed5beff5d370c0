"""LRN (local response normalization) of (N, C, H, W), as BVLC Caffe computes it.

ACROSS_CHANNELS:  s = k + alpha / n * sum_{c' = c - (n-1)/2 .. c + (n-1)/2} x[c']^2
WITHIN_CHANNEL:   s = 1 + alpha / n^2 * sum_{n x n window centred on (h, w)} x^2
                  (Caffe builds it as square -> AVE pool with pad (n-1)/2 ->
                  power -> product; that pool's divisor is always n^2 and ``k``
                  is not used)
y = x * s^-beta, windows clipped at the borders (zeros outside). Gradient:

    dx = dy * s^-beta - (2 alpha beta / D) * x * window_sum(dy * y / s)

with D = n (across) or n^2 (within); the windows are symmetric, so the
window sum is its own adjoint. n (local_size) must be odd. On the kernel
path (GPU, or emulated) lrn.cu computes one element per item, summing each
window in the order of ``window_sum`` (``kernels.lrn``). ACROSS_CHANNELS on
float32 NumPy arrays goes to oneDNN (``_lrn_onednn``; engine CAFFE keeps this path).
"""
from .. import kernels
from ..core import backend
from ..kernels import lrn as lrn_kernels
from ..proto import caffe_pb2
from . import _lrn_onednn
from .base import Layer
from .registry import register

_L = caffe_pb2.LRNParameter


def window_sum(a, half, axis):
    """sum_{d = -half .. half} a[..., i + d, ...] along ``axis`` (zeros outside)."""
    out = a.copy()
    n = a.shape[axis]
    lead = (slice(None),) * axis
    for d in range(1, min(half, n - 1) + 1):
        out[lead + (slice(None, n - d),)] += a[lead + (slice(d, None),)]
        out[lead + (slice(d, None),)] += a[lead + (slice(None, n - d),)]
    return out


def neg_pow(s, beta, xp):
    """s ** -beta, with the common beta = 0.75 as square roots (faster than pow)."""
    if beta == 0.75:
        r = xp.sqrt(s)
        r *= s
        xp.sqrt(r, out=r)
        return xp.reciprocal(r, out=r)
    return xp.power(s, -beta)


@register("LRN")
class LRN(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        lp = self.param.lrn_param
        self.size = lp.local_size
        if self.size % 2 != 1:
            raise self.error("LRN only supports odd values for local_size (got %d)"
                             % self.size)
        self.half = (self.size - 1) // 2
        self.alpha, self.beta, self.k = lp.alpha, lp.beta, lp.k
        self.region = lp.norm_region
        if self.region not in (_L.ACROSS_CHANNELS, _L.WITHIN_CHANNEL):
            raise self.error("Unknown normalization region %d" % self.region)

    def reshape(self, bottom, top):
        if bottom[0].num_axes != 4:
            raise self.error("Input must have 4 axes, corresponding to (num, channels, "
                             "height, width); got shape %s" % (bottom[0].shape,))
        top[0].reshape(bottom[0].shape)

    def _window(self, a):
        if self.region == _L.ACROSS_CHANNELS:
            return window_sum(a, self.half, 1)
        return window_sum(window_sum(a, self.half, 2), self.half, 3)

    def forward(self, bottom, top):
        if _lrn_onednn.forward(self, bottom, top):   # oneDNN's engine (ACROSS_CHANNELS)
            return
        x = bottom[0].data
        if kernels.active(x):
            top[0].data, self._scale = lrn_kernels.forward(
                x, self.region == _L.ACROSS_CHANNELS, self.size, self.alpha, self.beta, self.k)
            return
        xp = backend.get_array_module(x)
        if self.region == _L.ACROSS_CHANNELS:
            scale = self._window(x * x * self.dtype.type(self.alpha / self.size))
            scale += self.dtype.type(self.k)
        else:  # (sum / n^2) * alpha + 1, the order of Caffe's pool and power layers
            scale = self._window(x * x) / self.dtype.type(self.size * self.size)
            scale *= self.dtype.type(self.alpha)
            scale += 1
        self._scale = scale
        self._scale_pow = neg_pow(scale, self.beta, xp)
        top[0].data = x * self._scale_pow

    def backward(self, top, propagate_down, bottom):
        if _lrn_onednn.backward(self, top, propagate_down, bottom) or not propagate_down[0]:
            return
        dy, y, x = top[0].diff, top[0].data, bottom[0].data
        if kernels.active(dy):
            bottom[0].diff = lrn_kernels.backward(dy, x, y, self._scale,
                                                  self.region == _L.ACROSS_CHANNELS,
                                                  self.size, self.alpha, self.beta)
            return
        area = self.size if self.region == _L.ACROSS_CHANNELS else self.size * self.size
        coef = self.dtype.type(2.0 * self.alpha * self.beta / area)
        acc = self._window(dy * y / self._scale)
        acc *= x
        acc *= coef
        bottom[0].diff = dy * self._scale_pow - acc
