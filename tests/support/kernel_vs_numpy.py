"""A layer run twice, on its NumPy path and on its kernel path (the kernels
emulated on the CPU), and the two compared: tops, bottom diffs, param diffs
(accumulated onto nonzero diffs, so that accumulation is checked too). The
family tests of tests/kernels use it over odd shapes, empty batches and both
float types."""
import numpy as np

from pycaffe_lowbit.core import backend
from support.helpers import build_layer
from support.kernel_coverage import launches

TOLERANCE = {np.float32: (2e-5, 1e-6), np.float64: (1e-11, 1e-13)}   # rtol, atol


def run_layer(text, bottoms, dtype=np.float32, in_place=False, n_top=1, phase=None,
              backward=True, propagate=None, params=None, seed=1701):
    """{name: array} after forward and (if ``backward``) backward with random top
    diffs; the layer's params are set to ``params`` (if given) and their diffs
    start at a fixed nonzero value."""
    backend.set_random_seed(seed)
    layer, bottom, top = build_layer('name: "l" ' + text, [np.asarray(b) for b in bottoms],
                                     n_top=n_top, dtype=dtype, phase=phase)
    if in_place:
        top = [bottom[0]] + top[1:]
    for i, p in enumerate(layer.blobs):
        if params is not None:
            p.data[...] = np.asarray(params[i]).reshape(p.shape)
        p.diff[...] = 0.5 + i
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    out = {"top%d" % i: t.data.copy() for i, t in enumerate(top)}
    out.update({"param%d" % i: p.data.copy() for i, p in enumerate(layer.blobs)})
    if not backward:
        return out
    rng = np.random.default_rng(seed)
    for t in top:
        if t.count:
            t.diff[...] = rng.standard_normal(t.shape) if t.num_axes else 1.7   # loss weight
    down = [True] * len(bottom) if propagate is None else propagate
    layer.backward(top, down, bottom)
    out.update({"diff%d" % i: b.diff.copy() for i, b in enumerate(bottom) if down[i]})
    out.update({"pdiff%d" % i: p.diff.copy() for i, p in enumerate(layer.blobs)})
    return out


def assert_kernels_equal_numpy(text, bottoms, dtype=np.float32, expect_launch=True, **kw):
    """The kernel path equals the NumPy path (to the float type's rounding);
    returns the (family, kernel) pairs launched."""
    ref = run_layer(text, bottoms, dtype, **kw)
    with launches() as seen:
        got = run_layer(text, bottoms, dtype, **kw)
    if expect_launch and all(np.size(b) for b in bottoms):   # n = 0 launches nothing
        assert seen, "no kernel launched for %s" % text
    rtol, atol = TOLERANCE[dtype]
    assert got.keys() == ref.keys()
    for key in ref:
        assert got[key].dtype == ref[key].dtype, key
        np.testing.assert_allclose(got[key], ref[key], rtol=rtol, atol=atol,
                                   err_msg="%s: %s" % (text, key))
    return seen
