"""ReLU through oneDNN's ``eltwise_relu`` on C-contiguous float32 NumPy arrays.

oneDNN's relu with alpha s computes, element by element,

    forward   y  = x        if x > 0 else s * x
    backward  dx = dy       if x > 0 else s * dy      (from the source x)

which is Caffe's ReLU: y = max(x, 0) + s min(x, 0) (for x > 0: x + s * 0; else
0 + s x) and dx = dy ((x > 0) + s (x <= 0)), x == 0 included (dx = s dy). The
arrays are viewed as one flat vector (the operation is elementwise), so one
plan serves every shape of a size. Both primitives work in place (src and dst,
or dy and dx, the same array). oneDNN's compiled kernel (``jit:...``) is
multi-threaded and 2-4x faster than NumPy's ``maximum`` on one thread; on CPUs
where it has only its reference loop (``ref:any``) ``plan`` answers None.
"""
import threading

import numpy as np

from . import onednn as dnn

_PLANS = dnn.PlanCache()


def plan(size, slope):
    """The cached ReLUPlan for ``size`` values and negative slope ``slope``, or
    None (library absent, no compiled implementation)."""
    if not dnn.available():
        return None
    key = (int(size), float(slope), dnn.threads())
    return _PLANS.get(key, lambda: ReLUPlan(size, slope))


class ReLUPlan:
    """Forward (training) and backward (from the source) relu primitives on (size,)."""

    def __init__(self, size, slope):
        self.md = dnn.plain_md((int(size),))
        self.slope = float(slope)
        lib = dnn.lib()
        self._hint = dnn.create_pd(lib.dnnl_eltwise_forward_primitive_desc_create, dnn.engine(),
                                   dnn.FORWARD_TRAINING, dnn.ELTWISE_RELU, self.md.ptr,
                                   self.md.ptr, self.slope, 0.0)
        self.ok = self._hint is not None
        self._bwd = None
        self._lock = threading.Lock()
        if self.ok:
            pd = dnn.ctypes.c_void_p()
            dnn.check(lib.dnnl_primitive_desc_clone(dnn.ctypes.byref(pd), self._hint), "clone")
            self.fwd = dnn.Primitive(pd)
            self.ok = self.fwd.impl.startswith("jit") and \
                self._backward_primitive().impl.startswith("jit")

    def __del__(self):
        if getattr(self, "_hint", None) and dnn.lib() is not None:
            dnn.lib().dnnl_primitive_desc_destroy(self._hint)

    def forward(self, x, y):
        """y = relu(x); x and y C-contiguous float32 of the plan's size (may be one array)."""
        self.fwd.run({dnn.ARG_SRC: x, dnn.ARG_DST: y})
        return y

    def backward(self, x, dy, dx):
        """dx = dy where x > 0 else slope * dy (dy and dx may be one array)."""
        self._backward_primitive().run({dnn.ARG_SRC: x, dnn.ARG_DIFF_DST: dy,
                                        dnn.ARG_DIFF_SRC: dx})
        return dx

    def _backward_primitive(self):
        with self._lock:
            if self._bwd is None:
                pd = dnn.create_pd(dnn.lib().dnnl_eltwise_backward_primitive_desc_create,
                                   dnn.engine(), dnn.ELTWISE_RELU, self.md.ptr, self.md.ptr,
                                   self.md.ptr, self.slope, 0.0, self._hint)
                if pd is None:
                    raise dnn.OneDNNError("no oneDNN relu backward")
                self._bwd = dnn.Primitive(pd)
        return self._bwd


def takes(*arrays):
    """These arrays can go to a plan: NumPy, float32, C-contiguous, one size."""
    a0 = arrays[0]
    return all(isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
               and a.size == a0.size for a in arrays) and a0.size > 0
