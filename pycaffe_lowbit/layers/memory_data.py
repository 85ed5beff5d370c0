"""MemoryData: batches from arrays held in memory (Caffe's MemoryDataLayer).

memory_data_param: batch_size, channels, height, width (all positive). Tops:
data (batch_size, channels, height, width) and labels, (batch_size,) at setup
and (batch_size, 1, 1, 1) after a forward, as in Caffe.

``reset(data, labels)`` (pycaffe's ``net.set_input_arrays``) gives N rows:
data (N, channels, height, width), labels (N,) or (N, 1, 1, 1), N a positive
multiple of batch_size. Forward k returns rows [k*b, (k+1)*b) mod N. The
arrays are copied at reset in the net's dtype (Caffe keeps a pointer to the
caller's float32 array instead); transform_param is not applied to them, as in
Caffe. No backward.
"""
import logging

import numpy as np

from .base import Layer
from .registry import register

log = logging.getLogger("pycaffe_lowbit")


@register("MemoryData")
class MemoryData(Layer):
    exact_num_bottom = 0
    exact_num_top = 2

    def layer_setup(self, bottom, top):
        p = self.param.memory_data_param
        self.batch_size = p.batch_size
        self.item_shape = (p.channels, p.height, p.width)
        if min((self.batch_size,) + self.item_shape) <= 0:
            raise self.error("batch_size, channels, height, and width must be specified "
                             "and positive in memory_data_param (got %d, %d, %d, %d)"
                             % ((self.batch_size,) + self.item_shape))
        top[0].reshape((self.batch_size,) + self.item_shape)
        top[1].reshape((self.batch_size,))
        self.data = self.labels = None
        self.pos = 0

    def reset(self, data, labels):
        """Feed N rows of data and labels (N a multiple of batch_size)."""
        data = np.asarray(data)
        labels = np.asarray(labels)
        if data.ndim != 4:
            raise self.error("data array must be 4-d (N, channels, height, width), got "
                             "shape %s" % (data.shape,))
        for axis, what in enumerate(("channels", "height", "width")):
            if data.shape[axis + 1] != self.item_shape[axis]:
                raise self.error("data array has wrong number of %s: %d, the layer has %d"
                                 % (what, data.shape[axis + 1], self.item_shape[axis]))
        if labels.ndim not in (1, 4) or labels.shape[1:] not in ((), (1, 1, 1)):
            raise self.error("labels array must be (N,) or (N, 1, 1, 1), got shape %s"
                             % (labels.shape,))
        if len(data) != len(labels):
            raise self.error("data and labels must have the same first dimension (%d vs %d)"
                             % (len(data), len(labels)))
        if len(data) == 0 or len(data) % self.batch_size:
            raise self.error("first dimensions of input arrays must be a positive multiple "
                             "of batch size %d (got %d)" % (self.batch_size, len(data)))
        if self.param.HasField("transform_param"):
            log.warning("MemoryData does not transform array data on Reset()")
        self.data = data.astype(self.dtype)
        self.labels = labels.reshape(-1).astype(self.dtype)
        self.pos = 0

    def reshape(self, bottom, top):
        """Shapes are set in forward."""

    def forward(self, bottom, top):
        if self.data is None:
            raise self.error("no data: call net.set_input_arrays(data, labels) (Caffe's "
                             "MemoryDataLayer::Reset) before forward")
        rows = slice(self.pos, self.pos + self.batch_size)
        top[0].reshape((self.batch_size,) + self.item_shape)
        top[1].reshape((self.batch_size, 1, 1, 1))
        top[0].set_values(self.data[rows])
        top[1].set_values(self.labels[rows].reshape(-1, 1, 1, 1))
        self.pos = (self.pos + self.batch_size) % len(self.data)

    def backward(self, top, propagate_down, bottom):
        """No bottoms."""
