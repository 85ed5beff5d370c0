"""ReLU's oneDNN engine: the layer side of ``cpu.onednn_eltwise``.

``relu_param.engine`` CAFFE keeps the layer's own (NumPy) path; every other
value takes oneDNN where the library loads, on float32 C-contiguous NumPy
arrays (not with the kernel path on, nor on CuPy or float64). The backward reads
the bottom data as the layer's own does (in place: y, whose sign is x's for a
slope >= 0), so either path may follow the other.
"""
from .. import kernels
from ..cpu import onednn, onednn_eltwise
from ..proto import caffe_pb2

_R = caffe_pb2.ReLUParameter


def _plan(layer, *arrays):
    if layer.param.relu_param.engine == _R.CAFFE or not onednn_eltwise.takes(*arrays) \
            or kernels.active(arrays[0]) or not onednn.available():
        return None
    return onednn_eltwise.plan(arrays[0].size, layer.negative_slope)


def forward(layer, bottom, top):
    """top data = relu(bottom data) through oneDNN; False where it does not apply."""
    x, y = bottom[0].data, top[0].data
    plan = _plan(layer, x, y)
    if plan is None:
        return False
    plan.forward(x, y)
    return True


def backward(layer, top, bottom):
    """bottom diff through oneDNN; False where it does not apply."""
    x, dy, dx = bottom[0].data, top[0].diff, bottom[0].diff
    plan = _plan(layer, x, dy, dx)
    if plan is None:
        return False
    plan.backward(x, dy, dx)
    return True
