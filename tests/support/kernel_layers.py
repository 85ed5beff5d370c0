"""A layer's kernel path against its NumPy path, for the family tests of
tests/kernels: the same layer (same seed, so the same fillers and draws), the
same inputs and top gradients; outputs, bottom gradients and parameter
gradients compared. Parameter diffs start non-zero, so a kernel path that
overwrote instead of accumulating (beta = 1) would show."""
import numpy as np

from pycaffe_lowbit.core import backend
from support.helpers import build_layer
from support.kernel_coverage import launches

PARAM_DIFF_START = 0.25


def forward_backward(text, bottoms, dtype=np.float32, n_top=1, phase=None, seed=0):
    """{name: array} of one forward and backward of the layer ``text`` (prototxt
    without the name) on ``bottoms``: 'top i', 'bottom i diff', 'param i diff',
    and the identities of the param diff arrays (to see they were kept)."""
    backend.set_random_seed(seed)
    layer, bottom, top = build_layer('name: "k" %s' % text, bottoms, n_top=n_top, dtype=dtype,
                                     phase=phase)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    rng = np.random.default_rng(seed + 1)
    for t in top:
        t.diff[...] = rng.standard_normal(t.shape)
    diffs = []
    for p in layer.blobs:
        p.diff[...] = PARAM_DIFF_START
        diffs.append(p.diff)
    layer.backward(top, [True] * len(bottom), bottom)
    out = {}
    for i, t in enumerate(top):
        out["top %d" % i] = t.data.copy()
    for i, b in enumerate(bottom):
        out["bottom %d diff" % i] = b.diff.copy()
    for i, p in enumerate(layer.blobs):
        out["param %d diff" % i] = p.diff.copy()
        assert p.diff is diffs[i], "param %d diff was replaced, not accumulated into" % i
    return out


def assert_kernels_equal_numpy(text, bottoms, rtol=None, atol=None, **kwargs):
    """The kernel path equals the NumPy path; returns the kernels launched."""
    dtype = np.dtype(kwargs.get("dtype", np.float32))
    rtol = rtol if rtol is not None else (2e-5 if dtype == np.float32 else 1e-12)
    atol = atol if atol is not None else (2e-5 if dtype == np.float32 else 1e-12)
    ref = forward_backward(text, bottoms, **kwargs)
    with launches() as seen:
        got = forward_backward(text, bottoms, **kwargs)
    # an empty batch launches nothing (n = 0), though each launch's arguments are checked
    assert seen or any(b.size == 0 for b in bottoms), "the layer took no kernel"
    assert got.keys() == ref.keys()
    for name in ref:
        assert got[name].dtype == ref[name].dtype and got[name].shape == ref[name].shape, name
        np.testing.assert_allclose(got[name], ref[name], rtol=rtol, atol=atol, err_msg=name)
    return seen
