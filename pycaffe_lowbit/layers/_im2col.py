"""im2col / col2im over any number of spatial axes, and Caffe's size rules.

For an input x of shape (N, C, *S), a kernel K = (k_1..k_d), stride s, pad p and
dilation r, output position o and kernel offset j read the input at

    i = o * s - p + j * r        (zero where i falls outside [0, S))

``im2col`` gathers these values into a column array, one strided slice copy
per kernel offset (no loop over pixels, channels or images):

    batch_first=True:   col[n, c, j_1..j_d, o_1..o_d]   (Caffe's Im2col layer)
    batch_first=False:  col[c, j_1..j_d, n, o_1..o_d]   (one GEMM for the whole batch)

so ``col.reshape(C * prod(K), -1)`` is Caffe's column matrix. ``col2im`` is its
adjoint: it sums every column entry back into the input position it came from.
Out-of-range positions are never padded into a copy of the input: each offset
copies only the output range that reads inside the image and zeroes the rest.
"""
import itertools


def conv_out_size(size, kernel, stride, pad, dilation):
    """Caffe's convolution output size, C++ integer division (truncates to 0)."""
    extent = dilation * (kernel - 1) + 1
    num = size + 2 * pad - extent
    q = num // stride if num >= 0 else -((-num) // stride)
    return q + 1


def deconv_out_size(size, kernel, stride, pad, dilation):
    """Caffe's deconvolution output size: stride * (in - 1) + extent - 2 * pad."""
    return stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad


def axis_range(start, stride, size, n_out):
    """For outputs o in [0, n_out) reading input index start + o * stride: the
    valid output range [lo, hi) (inside [0, size)) and the input slice it reads.
    Returns None when no output reads inside the input."""
    lo = max(0, -(start // stride))
    hi = min(n_out, max(0, (size - 1 - start) // stride + 1))
    if lo >= hi:
        return None
    first = start + lo * stride
    return lo, hi, slice(first, first + (hi - lo - 1) * stride + 1, stride)


def offset_ranges(kernel_pos, stride, pad, in_size, out_size):
    """Per spatial axis, axis_range for one kernel offset; None if any is empty.
    ``kernel_pos[a]`` is the offset's position j * dilation on axis a."""
    ranges = []
    for a in range(len(in_size)):
        r = axis_range(kernel_pos[a] - pad[a], stride[a], in_size[a], out_size[a])
        if r is None:
            return None
        ranges.append(r)
    return ranges


def _offset_view(col, ko, batch_first):
    """The (N, C, *O) view of ``col`` holding kernel offset ``ko``."""
    if batch_first:
        return col[(slice(None), slice(None)) + ko]
    return col[(slice(None),) + ko].swapaxes(0, 1)


def _kernel_offsets(kernel):
    return itertools.product(*[range(k) for k in kernel])


def im2col(x, kernel, stride, pad, dilation, out_size, batch_first=False, out=None):
    """Columns of ``x`` (N, C, *S); see the module docstring for the layouts.
    ``out``: an array of the column shape to fill (else one is allocated)."""
    xp = _xp(x)
    n, c = x.shape[:2]
    in_size = x.shape[2:]
    shape = ((n, c) + tuple(kernel) + tuple(out_size) if batch_first
             else (c,) + tuple(kernel) + (n,) + tuple(out_size))
    col = xp.empty(shape, x.dtype) if out is None else out.reshape(shape)
    for ko in _kernel_offsets(kernel):
        dst = _offset_view(col, ko, batch_first)
        pos = [j * d for j, d in zip(ko, dilation)]
        ranges = offset_ranges(pos, stride, pad, in_size, out_size)
        if ranges is None:
            dst[...] = 0
            continue
        inner = (slice(None), slice(None))
        dst[inner + tuple(slice(lo, hi) for lo, hi, _ in ranges)] = \
            x[inner + tuple(src for _, _, src in ranges)]
        for a, (lo, hi, _) in enumerate(ranges):
            before = (slice(None),) * (2 + a)
            if lo > 0:
                dst[before + (slice(0, lo),)] = 0
            if hi < out_size[a]:
                dst[before + (slice(hi, None),)] = 0
    return col


def col2im(col, x_shape, kernel, stride, pad, dilation, out_size, batch_first=False,
           out=None):
    """The adjoint of im2col: sum ``col`` (any shape holding the column layout)
    back into an (N, C, *S) array; ``out`` (shape x_shape) is overwritten if given."""
    xp = _xp(col)
    n, c = x_shape[:2]
    in_size = tuple(x_shape[2:])
    out_size = tuple(out_size)
    if batch_first:
        col = col.reshape((n, c) + tuple(kernel) + out_size)
    else:
        col = col.reshape((c,) + tuple(kernel) + (n,) + out_size)
    x = xp.zeros(x_shape, col.dtype) if out is None else out
    if out is not None:
        x[...] = 0
    inner = (slice(None), slice(None))
    for ko in _kernel_offsets(kernel):
        pos = [j * d for j, d in zip(ko, dilation)]
        ranges = offset_ranges(pos, stride, pad, in_size, out_size)
        if ranges is None:
            continue
        src = _offset_view(col, ko, batch_first)
        x[inner + tuple(s for _, _, s in ranges)] += \
            src[inner + tuple(slice(lo, hi) for lo, hi, _ in ranges)]
    return x


def _xp(a):
    from .. import backend
    return backend.get_array_module(a)
