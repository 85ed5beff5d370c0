"""Convolution in its three directions through oneDNN, on float32 NumPy arrays.

For x (N, C, *S), W (K, C / g, *k) in g groups, b (K,) and Caffe's geometry
(stride s, pad p, dilation d per spatial axis):

    forward:           y[n, o, q]  = b[o] + sum_{c in group(o), j} W[o, c', j] x[n, c, q s - p + j d]
    backward data:     dx = the transpose of that map applied to dy
    backward weights:  dW[o, c', j] = sum_{n, q} dy[n, o, q] x[n, c, q s - p + j d],  db[o] = sum dy[n, o, q]

``ConvPlan`` holds the primitives of one geometry (created lazily per direction,
and shared by every layer with that geometry: ``plan(...)`` caches them by
shape, geometry and OpenMP thread count). oneDNN picks its own blocked layouts
(format_tag any: with plain NCHW descriptors it falls back to a slow GEMM
implementation); each direction reorders the NCHW arrays in and out.

oneDNN's conventions differ from Caffe's in two places: its dilation counts the
gaps (d - 1), and its output size is (S + p_l + p_r - (d (k - 1) + 1)) / s + 1
with p_r free: p_r = (out - 1) s + d (k - 1) + 1 - S - p makes it equal to
Caffe's floor rule exactly (p_r may be smaller than p, or negative, where
the floor drops the last input rows). Grouped weights are the 5-D
(g, K / g, C / g, *k) descriptor over the same bytes. Where oneDNN offers no
implementation for a geometry, ``plan`` returns None and the caller keeps its
own path.
"""
import threading

import numpy as np

from . import onednn as dnn

_PLANS = dnn.PlanCache()


def output_size(size, kernel, stride, pad, dilation):
    """Caffe's (floor) output size of one spatial axis."""
    return (size + 2 * pad - (dilation * (kernel - 1) + 1)) // stride + 1


def plan(num, channels, in_size, num_output, kernel, stride, pad, dilation, group,
         bias_term):
    """The cached ConvPlan of this geometry at the current thread count, or None
    where oneDNN cannot take it (library absent, no implementation)."""
    if not dnn.available():
        return None
    key = (num, channels, tuple(in_size), num_output, tuple(kernel), tuple(stride),
           tuple(pad), tuple(dilation), group, bool(bias_term), dnn.threads())
    return _PLANS.get(key, lambda: ConvPlan(*key[:10]))


class ConvPlan:
    """The oneDNN primitives (and their reorders) for one convolution geometry."""

    def __init__(self, num, channels, in_size, num_output, kernel, stride, pad, dilation,
                 group, bias_term):
        self.group, self.bias_term = group, bias_term
        out_size = tuple(output_size(*a) for a in zip(in_size, kernel, stride, pad, dilation))
        self.x_shape = (num, channels) + tuple(in_size)
        self.y_shape = (num, num_output) + out_size
        self.w_dims = ((group, num_output // group, channels // group) if group > 1
                       else (num_output, channels)) + tuple(kernel)
        self.w_shape = (num_output, channels // group) + tuple(kernel)
        self.geometry = (dnn.dims(stride), dnn.dims(d - 1 for d in dilation), dnn.dims(pad),
                         dnn.dims((o - 1) * s + d * (k - 1) + 1 - n - p for o, s, d, k, n, p in
                                  zip(out_size, stride, dilation, kernel, in_size, pad)))
        self.x_md, self.y_md = dnn.plain_md(self.x_shape), dnn.plain_md(self.y_shape)
        self.w_md, self.b_md = dnn.plain_md(self.w_dims), dnn.plain_md((num_output,))
        # the "any" descriptors the primitives are created from (kept alive: the
        # C calls read them)
        self.any = [dnn.any_md(s) for s in
                    (self.x_shape, self.w_dims, self.y_shape)]
        self._lock = threading.Lock()
        self._fwd = self._bwd_data = None
        self._bwd_weights = {}
        # not oneDNN's reference loops (slower than im2col + GEMM)
        self.ok = min(self.x_shape + self.y_shape) > 0 and self._forward_parts() is not None \
            and not self._fwd[0].impl.startswith("ref")

    def __del__(self):
        hint = getattr(self, "_hint", None)
        if hint and dnn.lib() is not None:
            dnn.lib().dnnl_primitive_desc_destroy(hint)

    # -- primitives, created on first use -------------------------------------
    def _forward_parts(self):
        with self._lock:
            if self._fwd is None:
                lib = dnn.lib()
                pd = dnn.create_pd(
                    lib.dnnl_convolution_forward_primitive_desc_create, dnn.engine(),
                    dnn.FORWARD_TRAINING, dnn.CONVOLUTION_DIRECT, self.any[0].ptr,
                    self.any[1].ptr, self.b_md.ptr if self.bias_term else None,
                    self.any[2].ptr, *self.geometry)
                if pd is None:
                    return None
                # the forward pd is kept (without a primitive) as the backward hint
                self._hint = pd
                prim = dnn.Primitive(_clone_pd(pd))
                self._fwd = (prim, _reorder(self.x_md, prim.md(dnn.ARG_SRC)),
                             _reorder(self.w_md, prim.md(dnn.ARG_WEIGHTS)),
                             _reorder(prim.md(dnn.ARG_DST), self.y_md))
        return self._fwd

    def _backward_data_parts(self):
        with self._lock:
            if self._bwd_data is None:
                lib = dnn.lib()
                pd = dnn.create_pd(
                    lib.dnnl_convolution_backward_data_primitive_desc_create, dnn.engine(),
                    dnn.CONVOLUTION_DIRECT, self.any[0].ptr,
                    self.any[1].ptr, self.any[2].ptr,
                    *self.geometry, self._hint)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN backward-data convolution")
                prim = dnn.Primitive(pd)
                self._bwd_data = (prim, _reorder(self.y_md, prim.md(dnn.ARG_DIFF_DST)),
                                  _reorder(self.w_md, prim.md(dnn.ARG_WEIGHTS)),
                                  _reorder(prim.md(dnn.ARG_DIFF_SRC), self.x_md))
        return self._bwd_data

    def _backward_weights_parts(self, with_bias):
        with self._lock:
            if with_bias not in self._bwd_weights:
                lib = dnn.lib()
                pd = dnn.create_pd(
                    lib.dnnl_convolution_backward_weights_primitive_desc_create, dnn.engine(),
                    dnn.CONVOLUTION_DIRECT, self.any[0].ptr,
                    self.any[1].ptr, self.b_md.ptr if with_bias else None,
                    self.any[2].ptr, *self.geometry, self._hint)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN backward-weights convolution")
                prim = dnn.Primitive(pd)
                self._bwd_weights[with_bias] = (
                    prim, _reorder(self.x_md, prim.md(dnn.ARG_SRC)),
                    _reorder(self.y_md, prim.md(dnn.ARG_DIFF_DST)),
                    _reorder(prim.md(dnn.ARG_DIFF_WEIGHTS), self.w_md))
        return self._bwd_weights[with_bias]

    # -- the three directions ---------------------------------------------------
    # The blocked temporaries live in this thread's slots (``onednn.buffer``),
    # shared by every primitive, since one call ends before the next begins:
    # "a" the data-sized input (x forward, dy backward), "b" the other (y
    # forward, dx, then x for the weight gradient), "c" a second layout of dy,
    # "w" the weights or their gradient. LRN and pooling use "a" and "b" too.
    # One set of a few activation-sized arrays in all, not one per role.
    def forward(self, x, w, b=None, out=None):
        """y (N, K, *out) = conv(x, W) + b, float32: written into ``out`` where
        ``onednn.writable_out`` takes it, else a new array."""
        prim, src_in, w_in, dst_out = self._forward_parts()
        args = {dnn.ARG_SRC: _into(src_in, x, "a"), dnn.ARG_WEIGHTS: _into(w_in, w, "w")}
        if self.bias_term:
            args[dnn.ARG_BIAS] = _contiguous(b)
        y = dnn.writable_out(out, self.y_shape, x)
        y = np.empty(self.y_shape, np.float32) if y is None else y
        args[dnn.ARG_DST] = y if dst_out is None else dnn.buffer(prim.md(dnn.ARG_DST), "b")
        prim.run(args)
        if dst_out is not None:
            dst_out.run({dnn.ARG_SRC: args[dnn.ARG_DST], dnn.ARG_DST: y})
        return y

    def backward(self, x, dy, w, want_dx, want_dw, want_db, dx_into=None):
        """(dx or None, dW or None, db or None): dx the input gradient (N, C, *S),
        written into ``dx_into`` where ``onednn.writable_out`` takes it, else a
        new array; dW (K, C / g, *k) and db (K,) this batch's
        parameter gradients (new arrays: the caller accumulates them into its
        diffs)."""
        dy_cache = {}
        dx = dw = db = None
        if want_dx:
            prim, dy_in, w_in, dx_out = self._backward_data_parts()
            args = {dnn.ARG_DIFF_DST: _into(dy_in, dy, "a", dy_cache),
                    dnn.ARG_WEIGHTS: _into(w_in, w, "w")}
            dx = dnn.writable_out(dx_into, self.x_shape, x, dy)
            dx = np.empty(self.x_shape, np.float32) if dx is None else dx
            args[dnn.ARG_DIFF_SRC] = dx if dx_out is None else dnn.buffer(
                prim.md(dnn.ARG_DIFF_SRC), "b")
            prim.run(args)
            if dx_out is not None:
                dx_out.run({dnn.ARG_SRC: args[dnn.ARG_DIFF_SRC], dnn.ARG_DST: dx})
        if want_dw or want_db:
            with_bias = bool(want_db and self.bias_term)
            prim, x_in, dy_in, dw_out = self._backward_weights_parts(with_bias)
            args = {dnn.ARG_SRC: _into(x_in, x, "b"),
                    dnn.ARG_DIFF_DST: _into(dy_in, dy, "c", dy_cache)}
            dw = np.empty(self.w_shape, np.float32)
            args[dnn.ARG_DIFF_WEIGHTS] = dw if dw_out is None else dnn.buffer(
                prim.md(dnn.ARG_DIFF_WEIGHTS), "w")
            if with_bias:
                db = args[dnn.ARG_DIFF_BIAS] = np.empty(self.y_shape[1], np.float32)
            prim.run(args)
            if dw_out is not None:
                dw_out.run({dnn.ARG_SRC: args[dnn.ARG_DIFF_WEIGHTS], dnn.ARG_DST: dw})
        return dx, (dw if want_dw else None), db


def _clone_pd(pd):
    """A second handle on the primitive descriptor (one is kept as the hint)."""
    out = dnn.ctypes.c_void_p()
    dnn.check(dnn.lib().dnnl_primitive_desc_clone(dnn.ctypes.byref(out), pd), "pd_clone")
    return out


def _reorder(src_md, dst_md):
    """The reorder between two layouts, or None where they are the same."""
    return None if src_md == dst_md else dnn.reorder(src_md, dst_md)


def _contiguous(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _into(reorder, array, slot, cache=None):
    """``array`` (C-contiguous float32) in the layout ``reorder`` produces (itself
    where ``reorder`` is None), in this thread's temporary ``slot``; ``cache``
    shares the result between the two backward primitives when they want the
    same layout."""
    array = _contiguous(array)
    if reorder is None:
        return array
    dst_md = reorder.md(dnn.ARG_DST)
    if cache is not None:
        for md, out in cache.values():
            if md == dst_md:
                return out
    out = dnn.buffer(dst_md, slot)
    reorder.run({dnn.ARG_SRC: array, dnn.ARG_DST: out})
    if cache is not None:
        cache[len(cache)] = (dst_md, out)
    return out
