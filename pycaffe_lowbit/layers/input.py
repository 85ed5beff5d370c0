"""Layers with no bottoms that provide blobs: Input and DummyData.

Input: tops shaped by input_param.shape (once for all tops, once per top, or
not at all, when the caller shapes them); the values are set from outside
(``net.blobs['data'].data[...] = x``). Forward and backward do nothing.

DummyData: tops shaped by dummy_data_param.shape (once or once per top), or by
the legacy num/channels/height/width (each once or once per top), and filled
by data_filler (none: constant 0; one for all tops; or one per top). As in
Caffe, constant tops are filled once at setup and other tops are refilled at
every forward, drawing from the library's random generator.
"""
import numpy as np

from ..core import backend, fillers
from ..proto import caffe_pb2
from .base import Layer
from .registry import register


def _dims(shape_proto):
    return tuple(int(d) for d in shape_proto.dim)


class _SourceLayer(Layer):
    exact_num_bottom = 0
    min_num_top = 1

    def _shape_top(self, blob, shape):
        if any(d < 0 for d in shape):
            raise self.error("top shape %s has a negative dimension" % (shape,))
        blob.reshape(shape)

    def reshape(self, bottom, top):
        """The shapes are set once, at setup."""

    def forward(self, bottom, top):
        """Nothing to compute."""

    def backward(self, top, propagate_down, bottom):
        """No bottoms."""


@register("Input")
class Input(_SourceLayer):

    def layer_setup(self, bottom, top):
        shapes = self.param.input_param.shape
        if len(shapes) not in (0, 1, len(top)):
            raise self.error("must specify 'shape' once, once per top blob, or not "
                             "at all: %d tops vs. %d shapes" % (len(top), len(shapes)))
        for i, blob in enumerate(top):
            if len(shapes):
                self._shape_top(blob, _dims(shapes[0 if len(shapes) == 1 else i]))


@register("DummyData")
class DummyData(_SourceLayer):

    def layer_setup(self, bottom, top):
        p = self.param.dummy_data_param
        n_top, n_fill = len(top), len(p.data_filler)
        if n_fill not in (0, 1, n_top):
            raise self.error("number of data fillers must be 0, 1 or equal to the "
                             "number of tops: %d tops, %d data fillers"
                             % (n_top, n_fill))
        legacy = {k: list(getattr(p, k)) for k in ("num", "channels", "height", "width")}
        if any(legacy.values()):
            if len(p.shape):
                raise self.error("both shape and legacy fields (num, channels, "
                                 "height, width) were specified")
            for key, values in legacy.items():
                if len(values) not in (1, n_top):
                    raise self.error("must specify '%s' once, or once per top blob "
                                     "(%d); specified %d" % (key, n_top, len(values)))
            shapes = [tuple(legacy[k][0 if len(legacy[k]) == 1 else i]
                            for k in ("num", "channels", "height", "width"))
                      for i in range(n_top)]
        else:
            if len(p.shape) not in (1, n_top):
                raise self.error("must specify 'shape' once, or once per top blob "
                                 "(%d); specified %d" % (n_top, len(p.shape)))
            shapes = [_dims(p.shape[0 if len(p.shape) == 1 else i])
                      for i in range(n_top)]
        for blob, shape in zip(top, shapes):
            self._shape_top(blob, shape)

        if n_fill == 0:
            self.fillers = [caffe_pb2.FillerParameter(type="constant", value=0)]
        else:
            self.fillers = list(p.data_filler)
        self.refill = [f.type != "constant" for f in self.fillers]
        for i, blob in enumerate(top):
            f = self._filler_index(i)
            if self.refill[f]:  # drawn at forward; a bad filler fails now, as in Caffe
                self._values(self.fillers[f], blob.shape, np.random.default_rng(0))
            else:
                self._fill(blob, self.fillers[f])

    def _filler_index(self, i):
        return i if len(self.fillers) > 1 else 0

    def _values(self, param, shape, rng=None):
        try:
            return fillers.filler_values(param, shape, rng=rng)
        except fillers.FillerError as exc:
            raise self.error("data_filler: %s" % exc) from None

    def _fill(self, blob, param):
        values = self._values(param, blob.shape).astype(blob.dtype)
        blob.data[...] = backend.to_device(values, blob.xp)

    def forward(self, bottom, top):
        for i, blob in enumerate(top):
            f = self._filler_index(i)
            if self.refill[f]:
                self._fill(blob, self.fillers[f])
