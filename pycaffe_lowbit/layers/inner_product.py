"""InnerProduct (fully connected), as BVLC Caffe computes it.

The bottom is viewed as a matrix X (M x K): M = product of the axes before
``axis``, K = product of the rest. Top = X W^T + b, of shape
bottom.shape[:axis] + (num_output,). W is stored N x K, or K x N with
``transpose: true`` (then top = X W + b). Gradients:

    dX = dY W  (dY W^T when transposed)
    dW += dY^T X  (X^T dY when transposed),   db += sum over rows of dY

On NumPy, dW accumulates into the diff by one BLAS gemm with beta = 1
(``cpu.blas.gemm_acc``: no temporary); float32 takes oneDNN where it loads
(``_ip_onednn``: one thread pool with the convolutions). On the kernel path (GPU, or emulated)
the products are cuBLAS through CuPy: dW and db accumulate into the diffs with
beta = 1 (``kernels.blas``, no temporary), and the bias is added by
im2col.cu's channel-bias kernel.
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..cpu import blas as cpu_blas
from ..kernels import blas, im2col as im2col_kernels
from . import _ip_onednn
from .base import Layer
from .conv import canonical_axis
from .registry import register


@register("InnerProduct")
class InnerProduct(Layer):
    exact_num_bottom = 1
    exact_num_top = 1
    honours_transpose = True   # the quantized subclasses keep W as N x K

    def layer_setup(self, bottom, top):
        ip = self.param.inner_product_param
        self.num_output = ip.num_output
        if self.num_output <= 0:
            raise self.error("num_output must be > 0 (got %d)" % self.num_output)
        self.bias_term = ip.bias_term
        self.transpose = ip.transpose and self.honours_transpose
        self.axis = canonical_axis(self, bottom[0], ip.axis)
        self.k = bottom[0].count_range(self.axis)
        n, k = self.num_output, self.k
        shapes = [(k, n) if self.transpose else (n, k)]
        if self.bias_term:
            shapes.append((n,))
        self.init_params(shapes, [ip.weight_filler, ip.bias_filler])

    def reshape(self, bottom, top):
        axis = canonical_axis(self, bottom[0], self.param.inner_product_param.axis)
        k = bottom[0].count_range(axis)
        if k != self.k:
            raise self.error("Input size incompatible with inner product parameters: "
                             "%d inputs per row (bottom %s from axis %d), expected %d"
                             % (k, bottom[0].shape, axis, self.k))
        self.axis = axis
        self.m = bottom[0].count_range(0, axis)
        top[0].reshape(bottom[0].shape[:axis] + (self.num_output,))

    def _forward_weight(self):
        """W for this forward: the blob itself. Quantized layers override this
        (and ``_backward_weight``) to compute with an effective weight."""
        return self.blobs[0].data

    def _backward_weight(self):
        """W for the input gradient: the one the last forward used."""
        return self.blobs[0].data

    def _w(self, w):
        """W as the K x N right factor: top = X @ _w(W)."""
        return w if self.transpose else w.T

    def forward(self, bottom, top):
        if _ip_onednn.forward(self, bottom, top):   # oneDNN's engine (float32 on the CPU)
            return
        xp = backend.get_array_module(bottom[0].data)
        x = bottom[0].data.reshape(self.m, self.k)
        y = xp.matmul(x, self._w(self._forward_weight()))
        if self.bias_term and kernels.active(y):
            im2col_kernels.add_channel_bias(y, self.blobs[1].data)
        elif self.bias_term:
            y += self.blobs[1].data
        top[0].data = y.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if _ip_onednn.backward(self, top, propagate_down, bottom):
            return
        xp = backend.get_array_module(top[0].diff)
        dy = top[0].diff.reshape(self.m, self.num_output)
        on_kernels = kernels.active(dy)
        if on_kernels:
            self._backward_params_blas(bottom[0].data.reshape(self.m, self.k), dy)
        elif self.param_propagate_down[0]:
            x = bottom[0].data.reshape(self.m, self.k)
            diff = self.blobs[0].diff
            if xp is not np:
                diff += xp.matmul(x.T, dy) if self.transpose else xp.matmul(dy.T, x)
            elif self.transpose:   # one BLAS call with beta = 1 into the diff
                cpu_blas.gemm_acc(x.T, dy, diff)
            else:
                cpu_blas.gemm_acc(dy.T, x, diff)
        if self.bias_term and self.param_propagate_down[1] and not on_kernels:
            self.blobs[1].diff += dy.sum(axis=0)
        if propagate_down[0]:
            dx = xp.matmul(dy, self._w(self._backward_weight()).T)
            bottom[0].diff = dx.reshape(bottom[0].shape)

    def _backward_params_blas(self, x, dy):
        """dW += dY^T X (X^T dY transposed) and db += dY^T 1, each one cuBLAS call
        with beta = 1 into the diff."""
        if self.param_propagate_down[0]:
            if self.transpose:
                blas.gemm(x, dy, self.blobs[0].diff, trans_a=True)
            else:
                blas.gemm(dy, x, self.blobs[0].diff, trans_a=True)
        if self.bias_term and self.param_propagate_down[1]:
            blas.gemv(dy, blas.ones(self.m, dy.dtype, backend.get_array_module(dy)),
                      self.blobs[1].diff, trans=True)
