"""InnerProduct's oneDNN engine: its three products through ``cpu.onednn_matmul``.

With X (M, K) the bottom's rows, W (N, K) (or (K, N) with ``transpose``):

    forward:  Y = X W^T + b   written into the top's array
    dX = dY W                 written into the bottom's diff array
    dW += dY^T X              accumulated into the diff (oneDNN's sum post-op)

Taken for float32 NumPy arrays where oneDNN loads (``LOWBIT_ONEDNN=0`` and
float64, CuPy, the emulated kernels keep the BLAS path; Caffe's schema gives
InnerProduct no engine field). The reason is threads: at two threads and more,
OpenBLAS's pool beside oneDNN's OpenMP pool fights it for the cores (its idle
workers spin), a small net running several times slower than on one thread.
At one thread there is no such fight, and dW stays on OpenBLAS, which is
faster there for the small batches of fully connected layers (AlexNet's fc6
at batch 10: about 2x); Y and dX are faster on oneDNN at any thread count.
The quantized subclasses run on their effective weights, as on the BLAS path.
"""
import numpy as np

from .. import kernels
from ..cpu import blas as cpu_blas, onednn, onednn_matmul


def _takes(array):
    return (isinstance(array, np.ndarray) and array.dtype == np.float32
            and not kernels.active(array) and onednn.available())


def forward(layer, bottom, top):
    """Y = X W^T + b through oneDNN; False where it does not apply."""
    x = bottom[0].data
    if not _takes(x):
        return False
    x = x.reshape(layer.m, layer.k)
    w = layer._w(layer._forward_weight())
    bias = layer.blobs[1].data if layer.bias_term else None
    out = onednn.writable_out(top[0].data, (layer.m, layer.num_output), x)
    fresh = out is None
    if fresh:
        out = np.empty((layer.m, layer.num_output), np.float32)
    if not onednn_matmul.gemm(x, w, out, bias=bias):
        return False
    if fresh:
        top[0].data = out.reshape(top[0].shape)
    return True


def backward(layer, top, propagate_down, bottom):
    """dW, db accumulated and dX through oneDNN; False where it does not apply
    (nothing done then)."""
    dy = top[0].diff
    if not (_takes(dy) and isinstance(bottom[0].data, np.ndarray)):
        return False
    dy = dy.reshape(layer.m, layer.num_output)
    x = bottom[0].data.reshape(layer.m, layer.k)
    if layer.param_propagate_down[0]:
        diff = layer.blobs[0].diff
        a, b = (x.T, dy) if layer.transpose else (dy.T, x)
        if onednn.threads() == 1 or not onednn_matmul.gemm(a, b, diff, accumulate=True):
            cpu_blas.gemm_acc(a, b, diff)
    if layer.bias_term and layer.param_propagate_down[1]:
        layer.blobs[1].diff += dy.sum(axis=0)
    if propagate_down[0]:
        w = layer._w(layer._backward_weight()).T
        out = onednn.writable_out(bottom[0].diff, (layer.m, layer.k), dy)
        fresh = out is None
        if fresh:
            out = np.empty((layer.m, layer.k), np.float32)
        if not onednn_matmul.gemm(dy, w, out):
            np.matmul(dy, w, out=out)
        if fresh:
            bottom[0].diff = out.reshape(bottom[0].shape)
    return True
