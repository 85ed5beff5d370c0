"""Matrix products through oneDNN's matmul, on float32 NumPy matrices of any strides.

    gemm(a, b, out)                    out (M, N)  = a (M, K) @ b (K, N)
    gemm(a, b, out, bias=v)            out         = a @ b + v        (v: (N,))
    gemm(a, b, out, accumulate=True)   out        += a @ b            (oneDNN's sum post-op:
                                                                       no temporary)

Operands are 2-D views with any element strides (``W.T``, ``dy.T``: a transpose
is a stride, not a copy). This is InnerProduct's engine: its products run in the
same OpenMP thread pool as the convolutions, so that at two threads and more no
second pool (OpenBLAS's, whose idle workers spin) competes with oneDNN's for the
cores. Plans are cached per shapes, strides, bias, accumulation and thread count;
``gemm`` returns False where oneDNN takes none (library absent, a degenerate or
unaligned operand), and the caller keeps its BLAS path.
"""
import ctypes

import numpy as np

from . import onednn as dnn

_PLANS = dnn.PlanCache()


def _layout(a):
    """(shape, strides in elements) of a float32 matrix, or None where its
    strides are not whole elements or not positive."""
    if a.ndim != 2 or a.dtype != np.float32 or a.size == 0:
        return None
    it = a.itemsize
    if any(s % it for s in a.strides):
        return None
    rows, cols = (s // it for s in a.strides)
    cols = cols if a.shape[1] > 1 else 1          # an axis of one: its dense stride
    rows = rows if a.shape[0] > 1 else a.shape[1] * cols
    if rows <= 0 or cols <= 0:
        return None
    return a.shape, (rows, cols)


def _strided_md(shape, strides):
    md = ctypes.c_void_p()
    dnn.check(dnn.lib().dnnl_memory_desc_create_with_strides(
        ctypes.byref(md), 2, dnn.dims(shape), dnn.F32, dnn.dims(strides)), "md_create")
    return dnn.MemoryDesc(md)


class MatmulPlan:
    """One matmul primitive for fixed layouts of a, b, out (and the bias, the sum)."""

    def __init__(self, a_layout, b_layout, out_layout, with_bias, accumulate):
        self.mds = [_strided_md(*layout) for layout in (a_layout, b_layout, out_layout)]
        n = out_layout[0][1]
        self.bias_md = _strided_md((1, n), (n, 1)) if with_bias else None
        attr = dnn.user_scratchpad_attr()
        lib = dnn.lib()
        post_ops = ctypes.c_void_p()
        try:
            if accumulate:
                dnn.check(lib.dnnl_post_ops_create(ctypes.byref(post_ops)), "post_ops_create")
                dnn.check(lib.dnnl_post_ops_append_sum(post_ops, 1.0, 0, dnn.F32_UNDEF),
                          "post_ops_append_sum")
                dnn.check(lib.dnnl_primitive_attr_set_post_ops(attr, post_ops), "set_post_ops")
            pd = ctypes.c_void_p()
            status = lib.dnnl_matmul_primitive_desc_create(
                ctypes.byref(pd), dnn.engine(), self.mds[0].ptr, self.mds[1].ptr,
                self.bias_md.ptr if with_bias else None, self.mds[2].ptr, attr)
        finally:
            if post_ops:
                lib.dnnl_post_ops_destroy(post_ops)
            lib.dnnl_primitive_attr_destroy(attr)
        self.prim = dnn.Primitive(pd) if status == 0 else None
        # oneDNN's reference loops are far slower than a BLAS gemm
        self.ok = self.prim is not None and not self.prim.impl.startswith("ref")

    def run(self, a, b, out, bias):
        args = {dnn.ARG_SRC: a, dnn.ARG_WEIGHTS: b, dnn.ARG_DST: out}
        if bias is not None:
            args[dnn.ARG_BIAS] = bias
        self.prim.run(args)


def gemm(a, b, out, bias=None, accumulate=False):
    """out = a @ b (+ bias) or out += a @ b, in place; False where oneDNN does
    not take it (nothing is written then)."""
    if not dnn.available():
        return False
    layouts = [_layout(m) for m in (a, b, out)]
    if None in layouts or a.shape[1] != b.shape[0] or out.shape != (a.shape[0], b.shape[1]):
        return False
    if bias is not None:
        bias = np.ascontiguousarray(bias, np.float32)
        if bias.shape != (out.shape[1],):
            return False
    key = tuple(layouts) + (bias is not None, bool(accumulate), dnn.threads())
    plan = _PLANS.get(key, lambda: MatmulPlan(*key[:5]))
    if plan is None:
        return False
    plan.run(a, b, out, bias)
    return True
