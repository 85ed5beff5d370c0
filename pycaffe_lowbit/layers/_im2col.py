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
On the kernel path (GPU, or emulated) 1-D and 2-D geometries run as im2col.cu's
kernels (one item per column position, one per input element for col2im).
"""
import functools
import itertools

from .. import kernels
from ..kernels import im2col as im2col_kernels


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


@functools.lru_cache(maxsize=256)
def offset_plan(kernel, stride, pad, dilation, in_size, out_size):
    """Per kernel offset j (row-major): (j, src, dst, zero). ``src`` indexes the
    input (N, C, *S) and ``dst`` the output positions (N, C, *O) that read inside
    the image; ``zero`` lists the index tuples of the output positions that read
    padding. ``src`` and ``dst`` are None when every position reads padding."""
    plan = []
    inner = (slice(None), slice(None))
    for ko in itertools.product(*[range(k) for k in kernel]):
        ranges = [axis_range(j * d - p, s, size, o) for j, d, p, s, size, o
                  in zip(ko, dilation, pad, stride, in_size, out_size)]
        if any(r is None for r in ranges):
            plan.append((ko, None, None, ((Ellipsis,),)))
            continue
        src = inner + tuple(r[2] for r in ranges)
        dst = inner + tuple(slice(r[0], r[1]) for r in ranges)
        zero = []
        for a, (lo, hi, _) in enumerate(ranges):
            before = (slice(None),) * (2 + a)
            if lo > 0:
                zero.append(before + (slice(0, lo),))
            if hi < out_size[a]:
                zero.append(before + (slice(hi, None),))
        plan.append((ko, src, dst, tuple(zero)))
    return tuple(plan)


def _plan(kernel, stride, pad, dilation, in_size, out_size):
    return offset_plan(*(tuple(int(v) for v in t) for t in
                         (kernel, stride, pad, dilation, in_size, out_size)))


def _offset_view(col, ko, batch_first):
    """The (N, C, *O) view of ``col`` holding kernel offset ``ko``."""
    if batch_first:
        return col[(slice(None), slice(None)) + ko]
    return col[(slice(None),) + ko].swapaxes(0, 1)


def _col_shape(n, c, kernel, out_size, batch_first):
    if batch_first:
        return (n, c) + tuple(kernel) + tuple(out_size)
    return (c,) + tuple(kernel) + (n,) + tuple(out_size)


def im2col(x, kernel, stride, pad, dilation, out_size, batch_first=False, out=None):
    """Columns of ``x`` (N, C, *S); see the module docstring for the layouts.
    ``out``: an array of the column shape to fill (else one is allocated)."""
    n, c = x.shape[:2]
    shape = _col_shape(n, c, kernel, out_size, batch_first)
    col = _xp(x).empty(shape, x.dtype) if out is None else out.reshape(shape)
    if kernels.active(x) and im2col_kernels.supported(kernel, x):
        return im2col_kernels.im2col(x, col, kernel, stride, pad, dilation, out_size,
                                     batch_first)
    for ko, src, dst, zero in _plan(kernel, stride, pad, dilation, x.shape[2:], out_size):
        view = _offset_view(col, ko, batch_first)
        if src is not None:
            view[dst] = x[src]
        for z in zero:
            view[z] = 0
    return col


def col2im(col, x_shape, kernel, stride, pad, dilation, out_size, batch_first=False,
           out=None):
    """The adjoint of im2col: sum ``col`` (any shape holding the column layout)
    back into an (N, C, *S) array; ``out`` (shape x_shape) is overwritten if given."""
    n, c = x_shape[:2]
    col = col.reshape(_col_shape(n, c, kernel, out_size, batch_first))
    if kernels.active(col) and im2col_kernels.supported(kernel, col):
        x = _xp(col).empty(x_shape, col.dtype) if out is None else out
        return im2col_kernels.col2im(col, x, kernel, stride, pad, dilation, out_size,
                                     batch_first)
    if out is None:
        x = _xp(col).zeros(x_shape, col.dtype)
    else:
        x = out
        x[...] = 0
    for ko, src, dst, _ in _plan(kernel, stride, pad, dilation, x_shape[2:], out_size):
        if src is not None:
            x[src] += _offset_view(col, ko, batch_first)[dst]
    return x


def _xp(a):
    from ..core import backend
    return backend.get_array_module(a)


class FlatWindows:
    """The kernel offsets of a 2-D window geometry as shifts of flat arrays
    (for pooling: every offset becomes one contiguous slice over a whole chunk).

    Along an axis, output o of offset i reads input o * s - pad + i = (o + a) s + p
    with a = (i - pad) // s and phase p = (i - pad) % s. The input is split by
    phase into planes whose row u holds input row (u + a_min) s + p (``fill``
    outside the image), u in [0, R), R = out + a_max - a_min; likewise columns
    (Cc of them). In a chunk of n planes laid out flat as (n, R, Cc), offset
    (i, j) reads position g + shift(i, j) for grid position g = (m, o_h, o_w),
    so ``planes[ph, pw, shift : shift + L]`` (L = n R Cc - max shift) lines up
    with ``grid[:L]``; outputs are ``grid.reshape(n, R, Cc)[:, :oh, :ow]``.
    """

    def __init__(self, in_size, kernel, stride, pad, out_size):
        self.in_size, self.stride, self.out_size = tuple(in_size), tuple(stride), \
            tuple(out_size)
        axes = []
        for size, k, s, p, o in zip(in_size, kernel, stride, pad, out_size):
            a_min, a_max = (-p) // s, (k - 1 - p) // s
            n_rows = o + a_max - a_min
            phases = sorted({(i - p) % s for i in range(k)})
            rows = []  # per phase: plane rows [u0, u1) hold input rows start, start + s...
            for ph in phases:
                u0, u1 = -a_min, min(n_rows, (size - 1 - ph) // s - a_min + 1)
                rows.append((u0, u1, (u0 + a_min) * s + ph) if u1 > u0 else None)
            shifts = [(phases.index((i - p) % s), (i - p) // s - a_min) for i in range(k)]
            axes.append((n_rows, phases, rows, shifts, a_max - a_min))
        (r, ph_h, self.rows_h, sh_h, d_h), (cc, ph_w, self.rows_w, sh_w, d_w) = axes
        self.grid = (r, cc)
        self.n_phases = (len(ph_h), len(ph_w))
        self.max_shift = d_h * cc + d_w
        self.offsets = [(i * kernel[1] + j, a, b, u * cc + v)
                        for i, (a, u) in enumerate(sh_h) for j, (b, v) in enumerate(sh_w)]

    def length(self, n):
        """L: the grid positions computed for a chunk of n planes."""
        return n * self.grid[0] * self.grid[1] - self.max_shift

    def _image_slices(self):
        for a, rh in enumerate(self.rows_h):
            for b, rw in enumerate(self.rows_w):
                if rh is None or rw is None:
                    continue
                plane = (a, b, slice(None), slice(rh[0], rh[1]), slice(rw[0], rw[1]))
                image = (slice(None),) + tuple(
                    slice(r[2], r[2] + (r[1] - r[0] - 1) * s + 1, s)
                    for r, s in ((rh, self.stride[0]), (rw, self.stride[1])))
                yield plane, image

    def to_planes(self, x, fill, xp):
        """x (n, H, W) -> planes (phases_h, phases_w, n * R * Cc)."""
        planes = xp.full(self.n_phases + (x.shape[0],) + self.grid, fill, x.dtype)
        for plane, image in self._image_slices():
            planes[plane] = x[image]
        return planes.reshape(self.n_phases + (-1,))

    def from_planes(self, planes, out):
        """The image positions of ``planes`` into ``out`` (n, H, W); 0 elsewhere."""
        planes = planes.reshape(self.n_phases + (out.shape[0],) + self.grid)
        out[...] = 0
        for plane, image in self._image_slices():
            out[image] = planes[plane]
        return out

    def to_grid(self, y, fill, xp):
        """Outputs y (n, oh, ow) -> flat grid (n * R * Cc), ``fill`` elsewhere."""
        g = xp.full((y.shape[0],) + self.grid, fill, y.dtype)
        g[:, :self.out_size[0], :self.out_size[1]] = y
        return g.reshape(-1)

    def from_grid(self, g, n):
        return g.reshape((n,) + self.grid)[:, :self.out_size[0], :self.out_size[1]]
