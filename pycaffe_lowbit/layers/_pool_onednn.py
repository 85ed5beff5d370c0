"""Pooling's oneDNN engine: the layer side of ``cpu.onednn_pool``.

As Convolution's (``_conv_onednn``): ``pooling_param.engine`` CAFFE keeps the
layer's own path, every other value takes oneDNN where the library loads,
for MAX and AVE on float32 NumPy arrays with one top (the MAX mask top is
Caffe's index, which oneDNN's workspace is not), and only where oneDNN gives
Caffe's exact windows and divisors (``onednn_pool.algorithm``; decided per
shape, at reshape). MAX's backward needs the forward's workspace: a backward
after a forward on the other path takes the other path too.
"""
import numpy as np

from .. import kernels
from ..cpu import onednn, onednn_pool
from ..proto import caffe_pb2

_P = caffe_pb2.PoolingParameter
_METHODS = {_P.MAX: "MAX", _P.AVE: "AVE"}


def forward(layer, bottom, top):
    """y through oneDNN (keeping MAX's workspace); False where it does not apply."""
    layer._onednn_pass = None
    x = bottom[0].data
    if not (layer.param.pooling_param.engine != _P.CAFFE and len(top) == 1
            and layer.method in _METHODS and isinstance(x, np.ndarray)
            and x.dtype == np.float32 and not kernels.active(x) and onednn.available()):
        return False
    plan = onednn_pool.plan(_METHODS[layer.method], x.shape, layer.kernel, layer.stride,
                            layer.pad, layer.out_size)
    if plan is None:
        return False
    y, workspace = plan.forward(x, top[0].data)   # into the top's array, as Caffe
    if y is not top[0].data:
        top[0].data = y
    layer._onednn_pass = (plan, workspace)
    return True


def backward(layer, top, propagate_down, bottom):
    """dx through oneDNN after a oneDNN forward; False otherwise."""
    state = getattr(layer, "_onednn_pass", None)
    if state is None or not isinstance(top[0].diff, np.ndarray):
        return False
    if propagate_down[0]:
        plan, workspace = state
        bottom[0].diff = plan.backward(top[0].diff, workspace)
    return True
