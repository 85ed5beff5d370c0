"""LRN's oneDNN engine: the layer side of ``cpu.onednn_lrn``.

``lrn_param.engine`` CAFFE keeps the layer's own path; every other value takes
oneDNN where the library loads, for ACROSS_CHANNELS on float32 NumPy arrays
(WITHIN_CHANNEL keeps the layer's path: Caffe's version is not oneDNN's). The
backward needs the forward's state (blocked input, workspace): a backward after
a forward on the other path takes the other path too. The state's arrays are
reused by the layer's next forward.
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
    top[0].data, state = plan.forward(x, previous[1] if previous else None)
    layer._onednn_pass = (plan, state)
    return True


def backward(layer, top, propagate_down, bottom):
    """dx through oneDNN after a oneDNN forward; False otherwise."""
    state = getattr(layer, "_onednn_pass", None)
    if state is None or not isinstance(top[0].diff, np.ndarray):
        return False
    if propagate_down[0]:
        bottom[0].diff = state[0].backward(top[0].diff, state[1])
    return True
