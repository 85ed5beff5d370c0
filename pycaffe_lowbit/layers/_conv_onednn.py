"""Convolution's oneDNN engine: the layer side of ``cpu.onednn_conv``.

Chosen as Caffe chooses an engine, by the layer's ``convolution_param.engine``:
``CAFFE`` keeps the im2col + GEMM path; ``DEFAULT`` (and ``MKLDNN`` / ``MKL2017``,
the names of Intel's fork, and ``CUDNN``, which on the CPU means the fast path)
takes oneDNN where the library loads (``cpu.onednn.available()``: the
``onednn-cpu-gomp`` wheel, not turned off by ``LOWBIT_ONEDNN=0``). It runs on
float32 NumPy arrays only: float64 (the gradient checks), CuPy arrays and the
emulated kernel path keep the GEMM path, and so does a geometry oneDNN does not
implement (``onednn_conv.plan`` returns None). Deconvolution runs as the
transposed convolution: its forward is the convolution's backward-data, its
input gradient the convolution's forward, its weight gradient the
convolution's backward-weights with the roles of x and dy exchanged.

The parameter gradients accumulate into the diffs (diff += this batch's
gradient), as Caffe's do, so ``iter_size`` and shared parameters sum.
"""
import numpy as np

from .. import kernels
from ..cpu import onednn, onednn_conv
from ..proto import caffe_pb2


def wanted(layer):
    """The engine field asks for (or allows) oneDNN: everything but CAFFE."""
    return layer.param.convolution_param.engine != caffe_pb2.ConvolutionParameter.CAFFE


def _plan(layer, array):
    """The ConvPlan of the layer's convolution; for Deconvolution, of the
    convolution it transposes (input: the deconvolution's output, no bias)."""
    if not (getattr(layer, "onednn", False) and 1 <= layer.n_spatial <= 3
            and isinstance(array, np.ndarray) and array.dtype == np.float32
            and not kernels.active(array) and onednn.available()):
        return None
    if layer.reverse:
        return onednn_conv.plan(layer.num, layer.num_output, layer.out_size, layer.channels,
                                layer.kernel, layer.stride, layer.pad, layer.dilation,
                                layer.group, False)
    return onednn_conv.plan(layer.num, layer.channels, layer.in_size, layer.num_output,
                            layer.kernel, layer.stride, layer.pad, layer.dilation,
                            layer.group, layer.bias_term)


def forward(layer, bottom, top):
    """y = W * x + b for every bottom (Deconvolution: y = W^T x + b, the
    convolution's backward-data), through oneDNN; False where it does not
    apply (the caller then computes it)."""
    plan = _plan(layer, bottom[0].data)
    if plan is None:
        return False
    w = layer._forward_weight()
    b = layer.blobs[1].data if layer.bias_term else None
    for bot, t in zip(bottom, top):   # y into the top's array, as Caffe writes
        if layer.reverse:
            y = plan.backward(None, bot.data.reshape(plan.y_shape), w, True, False, False,
                              dx_into=t.data)[0]
            if b is not None:
                y += b.reshape((-1,) + (1,) * layer.n_spatial)
        else:
            y = plan.forward(bot.data.reshape(plan.x_shape), w, b, out=t.data)
        if y is not t.data:
            t.data = y.reshape(t.shape)
    return True


def backward(layer, top, propagate_down, bottom):
    """dx, and dW, db accumulated into the diffs, through oneDNN; False where it
    does not apply."""
    plan = _plan(layer, top[0].diff)
    if plan is None:
        return False
    want_w = bool(layer.param_propagate_down[0])
    want_b = bool(layer.bias_term and layer.param_propagate_down[1])
    for i, (bot, t) in enumerate(zip(bottom, top)):
        if not (want_w or want_b or propagate_down[i]):
            continue
        if layer.reverse:   # dx = W dy (the forward convolution), dW from (dy, x)
            dy = t.diff.reshape(plan.x_shape)
            dx = plan.forward(dy, layer._backward_weight(),
                              out=bot.diff) if propagate_down[i] else None
            dw = plan.backward(dy, bot.data.reshape(plan.y_shape), None, False, True,
                               False)[1] if want_w else None
            db = dy.sum(axis=(0,) + tuple(range(2, dy.ndim))) if want_b else None
        else:
            dx, dw, db = plan.backward(
                bot.data.reshape(plan.x_shape), t.diff.reshape(plan.y_shape),
                layer._backward_weight(), propagate_down[i], want_w, want_b,
                dx_into=bot.diff if propagate_down[i] else None)
        if dw is not None:
            layer.blobs[0].diff += dw.reshape(layer.blobs[0].shape)
        if db is not None:
            layer.blobs[1].diff += db
        if dx is not None and dx is not bot.diff:   # else written into the diff's array
            bot.diff = dx.reshape(bot.shape)
    return True

