"""MAX and AVE pooling through oneDNN on float32 NumPy arrays (N, C, H, W).

``plan(...)`` returns the cached PoolPlan of a geometry, or None where oneDNN
cannot give Caffe's exact result (the caller keeps its own path):

- the output size is the caller's (Caffe's ceil or floor rule): the right
  padding p_r = (out - 1) s + k - S - p makes oneDNN's size rule give it;
- MAX ignores padding (Caffe clips its windows to the image), so any p_r is
  exact, provided every window overlaps the image;
- AVE divides by the window clipped to the padded image S + p, ceil overhang
  excluded: oneDNN's ``avg_include_padding`` where no window overhangs (p_r <= p
  on both axes), ``avg_exclude_padding`` where there is no padding (the divisor
  is then the count inside the image); otherwise None.

MAX keeps a workspace (the argmax of each window, oneDNN's own format) from the
forward for the backward; the caller holds it (``forward`` returns it).
Both directions use plain NCHW (no reorders).
"""
import threading

import numpy as np

from . import onednn as dnn

_PLANS = dnn.PlanCache()


def algorithm(method, in_size, kernel, stride, pad, out_size):
    """oneDNN's algorithm computing Caffe's ``method`` ("MAX"/"AVE") here, or None."""
    right = [(o - 1) * s + k - n - p for o, s, k, n, p in zip(out_size, stride, kernel,
                                                                in_size, pad)]
    if min(out_size) < 1 or any((o - 1) * s - p >= n for o, s, p, n in
                                zip(out_size, stride, pad, in_size)):
        return None, right
    if method == "MAX":
        return dnn.POOLING_MAX, right
    if method == "AVE":
        if all(r <= p for r, p in zip(right, pad)):
            return dnn.POOLING_AVG_INCLUDE_PADDING, right
        if not any(pad):
            return dnn.POOLING_AVG_EXCLUDE_PADDING, right
    return None, right


def plan(method, shape, kernel, stride, pad, out_size):
    """The cached PoolPlan, or None (library absent, geometry not exact)."""
    if not dnn.available():
        return None
    key = (method, tuple(shape), tuple(kernel), tuple(stride), tuple(pad), tuple(out_size),
           dnn.threads())
    def make():
        alg, right = algorithm(method, shape[2:], kernel, stride, pad, out_size)
        return PoolPlan(alg, shape, kernel, stride, pad, right, out_size) if alg else None
    return _PLANS.get(key, make)


class PoolPlan:
    """Forward (training: with the MAX workspace) and backward primitives."""

    def __init__(self, alg, shape, kernel, stride, pad, right, out_size):
        self.alg = alg
        self.x_shape = tuple(shape)
        self.y_shape = tuple(shape[:2]) + tuple(out_size)
        self.x_md, self.y_md = dnn.plain_md(self.x_shape), dnn.plain_md(self.y_shape)
        self.geometry = (dnn.dims(stride), dnn.dims(kernel), dnn.dims((0, 0)), dnn.dims(pad),
                         dnn.dims(right))
        lib = dnn.lib()
        self._hint = dnn.create_pd(lib.dnnl_pooling_forward_primitive_desc_create,
                                   dnn.engine(), dnn.FORWARD_TRAINING, alg, self.x_md.ptr,
                                   self.y_md.ptr, *self.geometry)
        self.ok = self._hint is not None
        if self.ok:
            self.fwd = dnn.Primitive(_clone(self._hint))
            ws = self.fwd.md(dnn.ARG_WORKSPACE)
            self.ws_bytes = ws.nbytes if ws is not None else 0
        self._bwd = None
        self._lock = threading.Lock()
        # only oneDNN's compiled kernels: below AVX2 (ONEDNN_MAX_CPU_ISA, older
        # CPUs) it has plain loops here ("simple_nchw"), no faster than the layer's
        self.ok = self.ok and self.fwd.impl.startswith("jit")

    def __del__(self):
        if getattr(self, "_hint", None) and dnn.lib() is not None:
            dnn.lib().dnnl_primitive_desc_destroy(self._hint)

    def forward(self, x, into=None):
        """(y, workspace or None): y (N, C, *out), written into ``into`` where
        ``onednn.writable_out`` takes it, else a new array."""
        y = dnn.writable_out(into, self.y_shape, x)
        if y is None:
            y = np.empty(self.y_shape, np.float32)
        args = {dnn.ARG_SRC: np.ascontiguousarray(x, np.float32), dnn.ARG_DST: y}
        ws = None
        if self.ws_bytes:
            ws = args[dnn.ARG_WORKSPACE] = np.empty(self.ws_bytes, np.uint8)
        self.fwd.run(args)
        return y, ws

    def backward(self, dy, ws):
        """dx (N, C, H, W), a new array, from dy and the forward's workspace."""
        with self._lock:
            if self._bwd is None:
                pd = dnn.create_pd(dnn.lib().dnnl_pooling_backward_primitive_desc_create,
                                   dnn.engine(), self.alg, self.x_md.ptr, self.y_md.ptr,
                                   *self.geometry, self._hint)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN pooling backward")
                self._bwd = dnn.Primitive(pd)
        dx = np.empty(self.x_shape, np.float32)
        args = {dnn.ARG_DIFF_DST: np.ascontiguousarray(dy, np.float32), dnn.ARG_DIFF_SRC: dx}
        if ws is not None:
            args[dnn.ARG_WORKSPACE] = ws
        self._bwd.run(args)
        return dx


def _clone(pd):
    out = dnn.ctypes.c_void_p()
    dnn.check(dnn.lib().dnnl_primitive_desc_clone(dnn.ctypes.byref(out), pd), "pd_clone")
    return out
