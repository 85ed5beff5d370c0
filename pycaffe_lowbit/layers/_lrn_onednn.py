"""LRN's oneDNN engine: the layer side of ``cpu.onednn_lrn``.

``lrn_param.engine`` CAFFE keeps the layer's own path; every other value takes
oneDNN where the library loads, for ACROSS_CHANNELS on float32 NumPy arrays
(WITHIN_CHANNEL keeps the layer's path: Caffe's version is not oneDNN's).

Where the bottom outlives the forward (top is another blob), the forward is
oneDNN's inference and keeps nothing, and the backward recomputes oneDNN's
workspace from the bottom, a chunk of images at a time: the state it would keep
is three times the input per layer (36 MiB on AlexNet b10, Caffe's scale being
once the input). In place, the forward keeps that state (blocked input,
workspace) for the backward, and the next forward reuses its arrays. A backward
after a forward on the other path takes the other path too.
"""
import numpy as np

from .. import kernels
from ..cpu import onednn, onednn_lrn
from ..proto import caffe_pb2

_L = caffe_pb2.LRNParameter


def forward(layer, bottom, top):
    """y through oneDNN; False where it does not apply."""
    previous = getattr(layer, "_onednn_pass", None)
    layer._onednn_pass = None
    x = bottom[0].data
    if not (layer.param.lrn_param.engine != _L.CAFFE and layer.region == _L.ACROSS_CHANNELS
            and isinstance(x, np.ndarray) and x.dtype == np.float32
            and not kernels.active(x) and onednn.available()):
        return False
    plan = onednn_lrn.plan(x.shape, layer.size, layer.alpha, layer.beta, layer.k)
    if plan is None:
        return False
    if top[0] is not bottom[0]:   # written into the top's array, as Caffe does
        y = plan.forward_inference(x, top[0].data)
        if y is not top[0].data:
            top[0].data = y
        layer._onednn_pass = (plan, None)
        return True
    top[0].data, state = plan.forward(x, previous[1] if previous and previous[1] else None)
    layer._onednn_pass = (plan, state)
    return True


def backward(layer, top, propagate_down, bottom):
    """dx through oneDNN after a oneDNN forward; False otherwise."""
    state = getattr(layer, "_onednn_pass", None)
    if state is None or not isinstance(top[0].diff, np.ndarray):
        return False
    if propagate_down[0]:
        plan, kept = state
        if kept is not None:
            bottom[0].diff = plan.backward(top[0].diff, kept)
            return True
        dx = plan.backward_recomputed(bottom[0].data, top[0].diff, bottom[0].diff)
        if dx is not bottom[0].diff:
            bottom[0].diff = dx
    return True
