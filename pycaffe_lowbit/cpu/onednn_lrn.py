"""LRN across channels through oneDNN on float32 NumPy arrays (N, C, H, W).

oneDNN's ``lrn_across_channels`` computes Caffe's ACROSS_CHANNELS formula,

    y = x * (k + alpha / n * sum_{c' = c - (n-1)/2 .. c + (n-1)/2} x[c']^2)^-beta

(zeros outside the channels; n odd, as Caffe requires), and its exact
gradient. Both run on the channel-blocked layout nChw16c (on plain NCHW
oneDNN 3.2 has only its reference backward, 30x slower), with reorders from
and to NCHW.

Two ways to pair the passes, for memory. ``forward`` (training mode) returns
its workspace (twice the input) and blocked input for ``backward``, held by the
caller: three times the input kept per layer (Caffe keeps its scale, once the
input), the way of an in-place LRN, whose input is gone by the backward.
``forward_inference`` keeps nothing, and ``backward_recomputed(x, dy)`` runs
the training forward again, a few images at a time (about CHUNK_BYTES of
workspace), before each chunk's backward: one more forward's time, and only
temporaries the size of a chunk.
WITHIN_CHANNEL is not taken: Caffe's version ignores k and divides by n^2
through an AVE pooling, which oneDNN's does not reproduce.
"""
import threading

import numpy as np

from . import onednn as dnn

_PLANS = dnn.PlanCache()
CHUNK_BYTES = 4 << 20   # workspace per chunk of ``backward_recomputed``


def plan(shape, size, alpha, beta, k):
    """The cached LRNPlan, or None (library absent, no implementation)."""
    if not dnn.available():
        return None
    key = (tuple(shape), size, alpha, beta, k, dnn.threads())
    return _PLANS.get(key, lambda: LRNPlan(shape, size, alpha, beta, k))


class LRNPlan:
    """Forward (training, with its workspace) and backward primitives."""

    def __init__(self, shape, size, alpha, beta, k):
        self.shape = tuple(shape)
        self.plain = dnn.plain_md(self.shape)
        self.md = dnn.tag_md(self.shape, "aBcd16b")
        self.to_blocked = dnn.reorder(self.plain, self.md)
        self.to_plain = dnn.reorder(self.md, self.plain)
        self.params = (size, alpha, beta, k)
        lib = dnn.lib()
        self._hint = dnn.create_pd(lib.dnnl_lrn_forward_primitive_desc_create, dnn.engine(),
                                   dnn.FORWARD_TRAINING, dnn.LRN_ACROSS_CHANNELS, self.md.ptr,
                                   self.md.ptr, *self.params)
        self.ok = self._hint is not None
        if self.ok:
            pd = dnn.ctypes.c_void_p()
            dnn.check(lib.dnnl_primitive_desc_clone(dnn.ctypes.byref(pd), self._hint), "clone")
            self.fwd = dnn.Primitive(pd)
            ws = self.fwd.md(dnn.ARG_WORKSPACE)
            self.ws_bytes = ws.nbytes if ws is not None else 0
        self._bwd = self._inference = None
        self._lock = threading.Lock()
        # only oneDNN's compiled kernels: below AVX2 (ONEDNN_MAX_CPU_ISA, older
        # CPUs) it has its reference loops here, slower than the layer's own path
        self.ok = self.ok and self.fwd.impl.startswith("lrn_jit") and \
            self._backward_primitive().impl.startswith("lrn_jit")

    def __del__(self):
        if getattr(self, "_hint", None) and dnn.lib() is not None:
            dnn.lib().dnnl_primitive_desc_destroy(self._hint)

    def _blocked(self, a, slot):
        out = dnn.buffer(self.md, slot)
        self.to_blocked.run({dnn.ARG_SRC: np.ascontiguousarray(a, np.float32),
                             dnn.ARG_DST: out})
        return out

    def _plain(self, blocked, into=None):
        out = dnn.writable_out(into, self.shape)
        out = np.empty(self.shape, np.float32) if out is None else out
        self.to_plain.run({dnn.ARG_SRC: blocked, dnn.ARG_DST: out})
        return out

    def forward(self, x, reuse=None):
        """(y, state for ``backward``): y a new array. ``reuse``: the state of
        this caller's previous forward, whose arrays are taken again (no fresh
        pages; the caller's backward of that pass is over)."""
        if reuse is not None and reuse[0].size * 4 >= self.md.nbytes and (
                reuse[1] is None or reuse[1].nbytes >= self.ws_bytes):
            xb, ws = reuse[0][:self.md.nbytes // 4], reuse[1]
        else:
            xb = dnn.buffer(self.md)
            ws = np.empty(self.ws_bytes, np.uint8) if self.ws_bytes else None
        self.to_blocked.run({dnn.ARG_SRC: np.ascontiguousarray(x, np.float32), dnn.ARG_DST: xb})
        args = {dnn.ARG_SRC: xb, dnn.ARG_DST: dnn.buffer(self.md, "b")}
        if ws is not None:
            args[dnn.ARG_WORKSPACE] = ws[:self.ws_bytes]
        self.fwd.run(args)
        return self._plain(args[dnn.ARG_DST]), (xb, ws)

    def forward_inference(self, x, into=None):
        """y, with no state kept (oneDNN's inference mode): written into
        ``into`` where ``onednn.writable_out`` takes it (x may be ``into``: it
        is copied to its blocked layout first), else a new array."""
        with self._lock:
            if self._inference is None:
                pd = dnn.create_pd(dnn.lib().dnnl_lrn_forward_primitive_desc_create,
                                   dnn.engine(), dnn.FORWARD_INFERENCE,
                                   dnn.LRN_ACROSS_CHANNELS, self.md.ptr, self.md.ptr,
                                   *self.params)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN LRN inference forward")
                self._inference = dnn.Primitive(pd)
        args = {dnn.ARG_SRC: self._blocked(x, "a"), dnn.ARG_DST: dnn.buffer(self.md, "b")}
        self._inference.run(args)
        return self._plain(args[dnn.ARG_DST], into)

    def backward_recomputed(self, x, dy, into=None):
        """dx from x and dy alone: the training forward recomputed per chunk of
        images (its workspace about CHUNK_BYTES), then its backward. dx is
        written into ``into`` where ``onednn.writable_out`` takes it, else it is
        a new array."""
        x, dy = (np.ascontiguousarray(a, np.float32) for a in (x, dy))
        dx = dnn.writable_out(into, self.shape, x, dy)
        if dx is None:
            dx = np.empty(self.shape, np.float32)
        per_image = max(self.ws_bytes // max(self.shape[0], 1), 1)
        step = max(1, min(self.shape[0], CHUNK_BYTES // per_image))
        for i in range(0, self.shape[0], step):
            part = self if step == self.shape[0] else \
                plan((min(step, self.shape[0] - i),) + self.shape[1:], *self.params)
            if part is None:
                raise dnn.OneDNNError("no oneDNN LRN for a chunk of %s" % (self.shape,))
            xb = part._blocked(x[i:i + step], "c")
            ws = dnn.buffer(part.fwd.md(dnn.ARG_WORKSPACE), "ws") if part.ws_bytes else None
            args = {dnn.ARG_SRC: xb, dnn.ARG_DST: dnn.buffer(part.md, "b")}
            if ws is not None:
                args[dnn.ARG_WORKSPACE] = ws
            part.fwd.run(args)
            args = {dnn.ARG_SRC: xb, dnn.ARG_DIFF_DST: part._blocked(dy[i:i + step], "a"),
                    dnn.ARG_DIFF_SRC: args[dnn.ARG_DST]}
            if ws is not None:
                args[dnn.ARG_WORKSPACE] = ws
            part._backward_primitive().run(args)
            part.to_plain.run({dnn.ARG_SRC: args[dnn.ARG_DIFF_SRC], dnn.ARG_DST: dx[i:i + step]})
        return dx

    def backward(self, dy, state):
        """dx, a new array, from dy and the forward's state."""
        xb, ws = state
        args = {dnn.ARG_SRC: xb, dnn.ARG_DIFF_DST: self._blocked(dy, "a"),
                dnn.ARG_DIFF_SRC: dnn.buffer(self.md, "b")}
        if ws is not None:
            args[dnn.ARG_WORKSPACE] = ws
        self._backward_primitive().run(args)
        return self._plain(args[dnn.ARG_DIFF_SRC])

    def _backward_primitive(self):
        with self._lock:
            if self._bwd is None:
                pd = dnn.create_pd(dnn.lib().dnnl_lrn_backward_primitive_desc_create,
                                   dnn.engine(), dnn.LRN_ACROSS_CHANNELS, self.md.ptr,
                                   self.md.ptr, self.md.ptr, *self.params, self._hint)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN LRN backward")
                self._bwd = dnn.Primitive(pd)
        return self._bwd
