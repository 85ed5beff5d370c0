"""Convolution, Deconvolution and Im2col, as BVLC Caffe computes them.

Convolution of x (..., C, *S) with weights W (O, C / g, *K) in g groups:

    y[n, o, *q] = b[o] + sum_{c in group(o), j} W[o, c', j] x[n, c, q * s - p + j * r]

(zero outside the image), output size (S + 2p - (r (K - 1) + 1)) / s + 1 with
C++ integer division. Axes before ``axis`` are independent "images"; the axes
after it are spatial (any number). Every bottom i gives top i with the same
weights. Deconvolution is the transpose (the gradient of a convolution with
respect to its input): W is (C, O / g, *K) and the output size is
s (S - 1) + r (K - 1) + 1 - 2p. Im2col outputs the column matrix itself,
(N, C * prod(K), *out).

The computation is im2col + one GEMM per group over the whole batch (the batch
is cut into chunks only to bound the column buffer), and GEMM + col2im in the
transposed direction; see ``_im2col``. On the kernel path (GPU, or emulated)
the GEMMs are cuBLAS through CuPy, the layout changes and the bias are
im2col.cu's kernels, and the parameter gradients accumulate into the diffs
with beta = 1 (``kernels.blas``: no weight-sized temporary); on NumPy the
same through NumPy's own OpenBLAS (``cpu.blas.gemm_acc``); float32: oneDNN (``_conv_onednn``).
"""
import numpy as np

from .. import kernels
from ..core import backend
from ..cpu import blas as cpu_blas
from ..kernels import blas, im2col as im2col_kernels
from . import _conv_onednn
from ._im2col import col2im, conv_out_size, deconv_out_size, im2col
from .base import Layer, shape_str
from .registry import register

# Column-buffer size per chunk of the batch: small on CPU (about the L2 cache, so im2col's
# writes are still cached when the GEMM reads them: measured 10-20 % faster than 8 MiB
# on the CIFAR nets' layers, the same on AlexNet's), large on GPU (few kernel launches).
_COL_BYTES = {"numpy": 2 << 20, "other": 512 << 20}


def canonical_axis(layer, blob, axis):
    try:
        return blob.canonical_axis(axis)
    except IndexError as exc:
        raise layer.error(str(exc)) from None


def conv_geometry(layer, cp, n_spatial):
    """Caffe's kernel / stride / pad / dilation parsing of a ConvolutionParameter:
    tuples with one entry per spatial axis, with Caffe's checks and messages."""
    def need(ok, message):
        if not ok:
            raise layer.error(message)

    def per_axis(name, repeated, h_field, w_field, default):
        has_hw = h_field is not None and (cp.HasField(h_field) or cp.HasField(w_field))
        if has_hw:
            need(n_spatial == 2, "%s_h & %s_w can only be used for 2D convolution."
                 % (name, name))
            need(len(repeated) == 0, "Either %s or %s_h/w should be specified; not both."
                 % (name if name != "kernel" else "kernel_size", name))
            return (getattr(cp, h_field), getattr(cp, w_field))
        n = len(repeated)
        allowed = (1, n_spatial) if default is None else (0, 1, n_spatial)
        label = "kernel_size" if name == "kernel" else name
        need(n in allowed, "%s must be specified once, or once per spatial dimension "
             "(%s specified %d times; %d spatial dims)." % (label, label, n, n_spatial))
        if n == 0:
            return (default,) * n_spatial
        return tuple(int(repeated[0 if n == 1 else i]) for i in range(n_spatial))

    kernel = per_axis("kernel", cp.kernel_size, "kernel_h", "kernel_w", None)
    need(all(k > 0 for k in kernel), "Filter dimensions must be nonzero.")
    stride = per_axis("stride", cp.stride, "stride_h", "stride_w", 1)
    need(all(s > 0 for s in stride), "Stride dimensions must be nonzero.")
    pad = per_axis("pad", cp.pad, "pad_h", "pad_w", 0)
    dilation = per_axis("dilation", cp.dilation, None, None, 1)
    return tuple(map(int, kernel)), tuple(map(int, stride)), tuple(map(int, pad)), \
        tuple(map(int, dilation))


def _chunks(n, per_item, itemsize, xp):
    step = max(1, _COL_BYTES["numpy" if xp is np else "other"] // max(1, per_item * itemsize))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


class _ConvolutionBase(Layer):
    min_num_bottom = 1
    min_num_top = 1
    equal_num_bottom_top = True
    reverse = False  # Deconvolution: weights and im2col act on the top side

    def layer_setup(self, bottom, top):
        cp = self.param.convolution_param
        self.axis = canonical_axis(self, bottom[0], cp.axis)
        self.n_spatial = bottom[0].num_axes - self.axis - 1
        self.kernel, self.stride, self.pad, self.dilation = conv_geometry(self, cp, self.n_spatial)
        self.channels = bottom[0].shape[self.axis]
        self.num_output = cp.num_output
        self.group = cp.group
        if self.num_output <= 0:
            raise self.error("num_output must be > 0 (got %d)" % self.num_output)
        if self.group <= 0 or self.channels % self.group:
            raise self.error("group (%d) must divide the %d input channels"
                             % (self.group, self.channels))
        if self.num_output % self.group:
            raise self.error("Number of output should be multiples of group "
                             "(num_output %d, group %d)." % (self.num_output, self.group))
        self.bias_term = cp.bias_term
        self.onednn = _conv_onednn.wanted(self)   # the engine field (the CPU path)
        pair = (self.num_output, self.channels)   # (out, in) of the convolution W computes
        conv_out, conv_in = pair[::-1] if self.reverse else pair
        shapes = [(conv_out, conv_in // self.group) + self.kernel]
        if self.bias_term:
            shapes.append((self.num_output,))
        self.init_params(shapes, [cp.weight_filler, cp.bias_filler])

    def reshape(self, bottom, top):
        b0 = bottom[0]
        if b0.num_axes != self.axis + 1 + self.n_spatial:
            raise self.error("bottom num_axes may not change (was %d, now %d)."
                             % (self.axis + 1 + self.n_spatial, b0.num_axes))
        if b0.shape[self.axis] != self.channels:
            raise self.error("Input size incompatible with convolution kernel: %d "
                             "channels, expected %d." % (b0.shape[self.axis], self.channels))
        for i, b in enumerate(bottom[1:], 1):
            if b.shape != b0.shape:
                raise self.error("shape mismatch - bottom[0]: %s vs. bottom[%d]: %s"
                                 % (shape_str(b0.shape), i, shape_str(b.shape)))
        self.num = b0.count_range(0, self.axis)
        self.in_size = b0.shape[self.axis + 1:]
        size_rule = deconv_out_size if self.reverse else conv_out_size
        self.out_size = tuple(size_rule(*a) for a in zip(
            self.in_size, self.kernel, self.stride, self.pad, self.dilation))
        if any(d < 0 for d in self.out_size):
            raise self.error("output size %s is negative: kernel %s (dilation %s) larger "
                             "than the padded input %s" % (self.out_size, self.kernel,
                                                           self.dilation, self.in_size))
        shape = b0.shape[:self.axis] + (self.num_output,) + self.out_size
        for t in top:
            t.reshape(shape)

    # -- the weight the GEMMs use ------------------------------------------------
    def _forward_weight(self):
        """W for this forward: the blob itself. Quantized layers override this
        (and ``_backward_weight``) to compute with an effective weight."""
        return self.blobs[0].data

    def _backward_weight(self):
        """W for the input gradient: the one the last forward used."""
        return self.blobs[0].data

    # -- the two directions of the column GEMM ----------------------------------
    def _geom(self):
        return self.kernel, self.stride, self.pad, self.dilation

    def _col_side(self):
        """(channels, column spatial size) of the side im2col reads."""
        if self.reverse:
            return self.num_output, self.in_size
        return self.channels, self.out_size

    def _weight_matrix(self, array):
        """W as (group, rows, kernel_dim): conv_out_channels / g rows."""
        g = self.group
        return array.reshape(g, array.shape[0] // g, -1)

    def _to_gemm(self, a, n0, n1):
        """a[n0:n1] of shape (m, C, *S) as (g, C / g, m * prod(S))."""
        m = n1 - n0
        if kernels.active(a):
            c = backend.get_array_module(a).empty((a.shape[1], m, a[0].size // a.shape[1]),
                                                  a.dtype)
            im2col_kernels.swap_leading_axes(a[n0:n1], c)
        else:
            c = a[n0:n1].reshape(m, a.shape[1], -1).swapaxes(0, 1)  # (C, m, L)
        return c.reshape(self.group, a.shape[1] // self.group, -1)

    def _from_gemm(self, r, dst):
        """r (g, C / g, m * L) into dst (m, C, *S)."""
        m = dst.shape[0]
        if kernels.active(r):
            im2col_kernels.swap_leading_axes(r.reshape(-1, m, dst[0].size // dst.shape[1]), dst)
            return
        dst[...] = r.reshape(-1, m, *dst.shape[2:]).swapaxes(0, 1)

    def _im2col_gemm(self, a, n0, n1):
        """im2col of a[n0:n1] (the column side) as (g, kernel_dim, m * L)."""
        col_size = self._col_side()[1]
        col = im2col(a[n0:n1], *self._geom(), col_size)
        return col.reshape(self.group, -1, (n1 - n0) * int(np.prod(col_size, dtype=np.int64)))

    def _col2im_gemm(self, col, dst):
        col2im(col, dst.shape, *self._geom(), self._col_side()[1], out=dst)

    def _chunk_list(self, xp, both=False):
        """Batch chunks bounding the column buffer (``both``: also the one of the
        flipped stride-1 backward, over the other side)."""
        k = int(np.prod(self.kernel, dtype=np.int64))
        ch, col_size = self._col_side()
        per = ch * k * int(np.prod(col_size, dtype=np.int64))
        if both:
            per = max(per, self.num_output * k * int(np.prod(self.in_size, dtype=np.int64)))
        return _chunks(self.num, per, self.dtype.itemsize, xp)

    def backward(self, top, propagate_down, bottom):
        """The frame both directions share: the bias gradient, then for each
        bottom that needs work the chunked GEMMs of ``_backward_chunks``, which
        write dx and yield the factors (a, cols) of the weight gradient's
        pieces a @ cols^T (per group)."""
        if _conv_onednn.backward(self, top, propagate_down, bottom):   # oneDNN's engine
            return
        xp = backend.get_array_module(top[0].diff)
        if top[0].count == 0:    # an empty output (kernel one past the padded input)
            for i, b in enumerate(bottom):
                if propagate_down[i]:
                    b.diff[...] = 0
            return
        on_kernels = kernels.active(top[0].diff)
        want_w = self.param_propagate_down[0]
        want_b = self.bias_term and self.param_propagate_down[1]
        dw = None
        for i, (b, t) in enumerate(zip(bottom, top)):
            dy = t.diff.reshape((self.num, self.num_output) + self.out_size)
            if want_b:
                dy3 = dy.reshape(self.num, self.num_output,
                                 int(np.prod(self.out_size, dtype=np.int64)))
                if on_kernels:
                    blas.add_channel_sums(dy3, self.blobs[1].diff)
                else:
                    self.blobs[1].diff += dy3.sum(axis=(0, 2))
            if not (want_w or propagate_down[i]):
                continue
            x = b.data.reshape((self.num, self.channels) + self.in_size)
            dx = xp.empty(x.shape, self.dtype) if propagate_down[i] else None
            for a, cols in self._backward_chunks(xp, x, dy, dx, want_w):
                if on_kernels:    # dW += a cols^T per group, in place (beta = 1)
                    blas.gemm_groups(a, cols, self.blobs[0].diff, trans_b=True)
                    continue
                if xp is np and self.blobs[0].diff.flags.c_contiguous:   # same, BLAS
                    cpu_blas.gemm_acc_groups(a, cols.swapaxes(1, 2),
                                             self._weight_matrix(self.blobs[0].diff))
                    continue
                g = xp.matmul(a, cols.swapaxes(1, 2))
                if dw is None:
                    dw = g
                else:
                    dw += g
            if dx is not None:
                b.diff = dx.reshape(b.shape)
        if dw is not None:
            self.blobs[0].diff += dw.reshape(self.blobs[0].shape)

    def forward(self, bottom, top):
        if not _conv_onednn.forward(self, bottom, top):   # oneDNN's engine (CPU default)
            self._forward_gemm(bottom, top)

    def _forward_chunks(self, bottom, top, chunk, bias_added=False):
        """For each bottom i -> top i: ``chunk(xp, x, n0, n1, out)`` writes the
        output of batch items n0..n1 into ``out``; then the bias is added
        (unless ``chunk`` added it: ``bias_added``)."""
        xp = backend.get_array_module(bottom[0].data)
        for b, t in zip(bottom, top):
            x = b.data.reshape((self.num, self.channels) + self.in_size)
            y = xp.empty((self.num, self.num_output) + self.out_size, self.dtype)
            for n0, n1 in self._chunk_list(xp) if y.size else ():
                chunk(xp, x, n0, n1, y[n0:n1])
            if self.bias_term and kernels.active(y):
                im2col_kernels.add_channel_bias(y, self.blobs[1].data)
            elif self.bias_term and not bias_added:
                y += self.blobs[1].data.reshape((-1,) + (1,) * self.n_spatial)
            t.data = y.reshape(t.shape)


@register("Convolution")
class Convolution(_ConvolutionBase):
    """y = W * x + b (cross-correlation, as Caffe); see the module docstring."""

    def _forward_gemm(self, bottom, top):
        w = self._weight_matrix(self._forward_weight())
        # NumPy: the bias joins each chunk's GEMM result while it is in cache
        # (the same sums, in the same order, as adding it to the whole top after)
        b = self.blobs[1].data.reshape(self.group, -1, 1) \
            if self.bias_term and isinstance(bottom[0].data, np.ndarray) \
            and not kernels.active(bottom[0].data) else None

        def chunk(xp, x, n0, n1, out):   # im2col, then W @ columns (+ b)
            r = xp.matmul(w, self._im2col_gemm(x, n0, n1))
            if b is not None:
                r += b
            self._from_gemm(r, out)
        self._forward_chunks(bottom, top, chunk, bias_added=b is not None)

    def _backward_chunks(self, xp, x, dy, dx, want_w):
        """dW pieces dy @ im2col(x)^T (yielded as the pair); dx: col2im(W^T @ dy),
        or with stride 1 the correlation of dy with the flipped kernel when that
        is cheaper."""
        w_data = self._backward_weight()
        w = self._weight_matrix(w_data)
        flipped = dx is not None and self._flipped_backward()
        w_flip = self._flipped_weight_matrix(w_data) if flipped else None
        for n0, n1 in self._chunk_list(xp, both=flipped):
            dyc = self._to_gemm(dy, n0, n1)
            if want_w:
                yield dyc, self._im2col_gemm(x, n0, n1)
            if flipped:
                self._from_gemm(xp.matmul(w_flip, self._im2col_flipped(dy, n0, n1)),
                                dx[n0:n1])
            elif dx is not None:
                self._col2im_gemm(xp.matmul(w.swapaxes(1, 2), dyc), dx[n0:n1])

    def _flipped_backward(self):
        """With stride 1, dx is also the correlation of dy with the flipped kernel;
        its im2col is cheaper than a col2im of the same size (no scattered
        read-modify-write), so it pays when dy's columns are no larger than x's."""
        if any(s != 1 for s in self.stride):
            return False
        return self.num_output * int(np.prod(self.in_size, dtype=np.int64)) <= \
            self.channels * int(np.prod(self.out_size, dtype=np.int64))

    def _flipped_weight_matrix(self, w):
        """W[o, c, j] as (g, C / g, (O / g) * prod(K)) over (o, K - 1 - j)."""
        g = self.group
        flip = (Ellipsis,) + (slice(None, None, -1),) * self.n_spatial
        w = w.reshape((g, w.shape[0] // g) + w.shape[1:])[flip]
        return w.swapaxes(1, 2).reshape(g, self.channels // g, -1)

    def _im2col_flipped(self, dy, n0, n1):
        """im2col of dy[n0:n1] for the stride-1 full correlation that gives dx:
        pad' = dilation (K - 1) - pad, output size = input size."""
        pad = tuple(d * (k - 1) - p for k, p, d in zip(self.kernel, self.pad, self.dilation))
        col = im2col(dy[n0:n1], self.kernel, self.stride, pad, self.dilation, self.in_size)
        return col.reshape(self.group, -1, (n1 - n0) * int(np.prod(self.in_size, dtype=np.int64)))


@register("Deconvolution")
class Deconvolution(_ConvolutionBase):
    """The transpose of Convolution: y = W^T x scattered by col2im, plus b."""
    reverse = True

    def _forward_gemm(self, bottom, top):
        wt = self._weight_matrix(self._forward_weight()).swapaxes(1, 2)

        def chunk(xp, x, n0, n1, out):   # W^T @ x, then col2im
            self._col2im_gemm(xp.matmul(wt, self._to_gemm(x, n0, n1)), out)
        self._forward_chunks(bottom, top, chunk)

    def _backward_chunks(self, xp, x, dy, dx, want_w):
        """dW pieces x @ im2col(dy)^T (yielded as the pair); dx: W @ im2col(dy)."""
        w = self._weight_matrix(self._backward_weight())
        for n0, n1 in self._chunk_list(xp):
            col = self._im2col_gemm(dy, n0, n1)
            if want_w:
                yield self._to_gemm(x, n0, n1), col
            if dx is not None:
                self._from_gemm(xp.matmul(w, col), dx[n0:n1])


@register("Im2col")
class Im2col(Layer):
    """The column matrix of convolution_param's geometry:
    (..., C, *S) -> (..., C * prod(K), *out), rows ordered (c, k_1, ..., k_d)."""
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        cp = self.param.convolution_param
        self.axis = canonical_axis(self, bottom[0], cp.axis)
        self.n_spatial = bottom[0].num_axes - self.axis - 1
        if self.n_spatial < 1:
            raise self.error("needs at least one spatial axis after axis %d (bottom %s)"
                             % (self.axis, bottom[0].shape))
        self.geom = conv_geometry(self, cp, self.n_spatial)

    def reshape(self, bottom, top):
        b0 = bottom[0]
        if b0.num_axes != self.axis + 1 + self.n_spatial:
            raise self.error("bottom num_axes may not change.")
        self.num = b0.count_range(0, self.axis)
        self.channels = b0.shape[self.axis]
        self.in_size = b0.shape[self.axis + 1:]
        self.out_size = tuple(conv_out_size(*a) for a in zip(self.in_size, *self.geom))
        if any(d < 0 for d in self.out_size):
            raise self.error("output size %s is negative: kernel_size %s (dilation %s) "
                             "larger than the input %s padded by %s"
                             % ((self.out_size,) + tuple(self.geom[i] for i in (0, 3))
                                + (self.in_size, self.geom[2])))
        k = int(np.prod(self.geom[0], dtype=np.int64))
        top[0].reshape(b0.shape[:self.axis] + (self.channels * k,) + self.out_size)

    def forward(self, bottom, top):
        x = bottom[0].data.reshape((self.num, self.channels) + self.in_size)
        top[0].data = im2col(x, *self.geom, self.out_size, batch_first=True) \
            .reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            shape = (self.num, self.channels) + self.in_size
            dx = col2im(top[0].diff, shape, *self.geom, self.out_size, batch_first=True)
            bottom[0].diff = dx.reshape(bottom[0].shape)
