"""SPP: spatial pyramid pooling, as BVLC Caffe builds it (split -> pooling ->
flatten -> concat).

Bottom: (N, C, H, W). Level l = 0 .. pyramid_height - 1 pools the whole image
into about 2^l x 2^l bins with Caffe's Pooling layer (``pool``: MAX, AVE or
STOCHASTIC), per axis:

    bins = 2^l,  kernel = ceil(H / bins),  pad = (kernel * bins - H + 1) // 2,
    stride = kernel

Top: (N, sum_l C * oh_l * ow_l), the levels' outputs flattened per sample and
concatenated in level order (with Caffe's output-size rule oh_l is usually
bins). With pyramid_height 1 the top is the single pooling's (N, C, oh, ow),
not flattened, as in Caffe. Backward: dx = sum over levels of each pooling's
gradient of its slice of dy. On the kernel path (GPU, or emulated) the levels
run pooling.cu and the concatenation and its slices copy.cu (``kernels.copy``).
"""
from .. import kernels
from ..core.blob import Blob
from ..kernels import copy as copy_kernels
from ..proto import caffe_pb2
from .base import Layer, LayerSetupError
from .pooling import Pooling
from .registry import register

_SPP = caffe_pb2.SPPParameter
_P = caffe_pb2.PoolingParameter
_METHODS = {_SPP.MAX: _P.MAX, _SPP.AVE: _P.AVE, _SPP.STOCHASTIC: _P.STOCHASTIC}


def level_geometry(level, size):
    """(kernel, pad) of pyramid ``level`` along an axis of ``size`` (Caffe's rule)."""
    bins = 2 ** level
    kernel = -(-size // bins)
    return kernel, (kernel * bins - size + 1) // 2


@register("SPP")
class SPP(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        sp = self.param.spp_param
        self.height = int(sp.pyramid_height)
        if self.height < 1:
            raise self.error("pyramid_height must be at least 1 (got %d)" % self.height)
        if sp.pool not in _METHODS:
            raise self.error("Unknown pooling method %d (expected MAX, AVE or STOCHASTIC)"
                             % sp.pool)
        self.method = _METHODS[sp.pool]
        self._in_shape = None

    def _pooling_param(self, level, h, w):
        (kh, ph), (kw, pw) = level_geometry(level, h), level_geometry(level, w)
        param = caffe_pb2.LayerParameter(name="%s_pool%d" % (self.name, level),
                                         type="Pooling")
        pp = param.pooling_param
        pp.pool = self.method
        pp.kernel_h, pp.kernel_w = kh, kw
        pp.stride_h, pp.stride_w = kh, kw
        pp.pad_h, pp.pad_w = ph, pw
        return param

    def reshape(self, bottom, top):
        b = bottom[0]
        if b.num_axes != 4:
            raise self.error("Input must have 4 axes, corresponding to (num, channels, "
                             "height, width); got shape %s" % (b.shape,))
        n, c, h, w = b.shape
        if h <= 0 or w <= 0:
            raise self.error("Input dimensions cannot be zero (shape %s)" % (b.shape,))
        if self._in_shape != (b.shape, b.xp):  # Caffe rebuilds them on a new shape
            self._in_shape = (b.shape, b.xp)
            self._levels = []
            for level in range(self.height):
                pool = Pooling(self._pooling_param(level, h, w), phase=self.phase,
                               dtype=self.dtype)
                src = Blob(b.shape, dtype=self.dtype, xp=b.xp)
                out = Blob((), dtype=self.dtype, xp=b.xp)
                src.share_data(b)
                try:
                    pool.setup([src], [out])
                except LayerSetupError as exc:    # Caffe's CHECK in the level's pooling
                    self._in_shape = None
                    raise self.error("pyramid_height %d is too high for a %dx%d bottom: "
                                     "level %d: %s" % (self.height, h, w, level,
                                                       str(exc).split("): ", 1)[-1])) from None
                self._levels.append((pool, src, out))
        sizes = []
        for pool, src, out in self._levels:
            src.share_data(b)
            pool.reshape([src], [out])
            sizes.append(out.count // n if n else 0)
        self._sizes = sizes
        if self.height == 1:
            top[0].reshape(self._levels[0][2].shape)
        else:
            top[0].reshape(n, sum(sizes))

    def forward(self, bottom, top):
        b = bottom[0]
        xp = b.xp
        outs = []
        for (pool, src, out), size in zip(self._levels, self._sizes):
            src.share_data(b)
            pool.forward([src], [out])
            outs.append(out.data.reshape(b.shape[0], size))
        if self.height == 1:
            top[0].data = self._levels[0][2].data.copy()
        elif kernels.active(b.data):
            top[0].data = copy_kernels.concat(outs, 1)
        else:
            top[0].data = xp.concatenate(outs, axis=1)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        b = bottom[0]
        dy = top[0].diff.reshape(b.shape[0], sum(self._sizes))
        total, start = None, 0
        for (pool, src, out), size in zip(self._levels, self._sizes):
            src.share_data(b)
            if kernels.active(dy):
                out.diff = copy_kernels.take(dy, 1, start, size).reshape(out.shape)
            else:
                out.diff = dy[:, start:start + size].reshape(out.shape)
            start += size
            pool.backward([out], [True], [src])
            total = src.diff.copy() if total is None else total + src.diff
        b.diff = total
