"""cpu.pool (Numba MAX pooling) against the NumPy path of layers/pooling.py
(LOWBIT_NUMBA=0): bit-equal outputs and mask top, input gradients to rounding
(overlapping windows add in another order), float32 and float64, overlapping /
padded / ceil-mode windows, ties, -inf and NaN."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import jit

CASES = [
    ("kernel_size: 3 stride: 2", (2, 3, 9, 9)),
    ("kernel_size: 3 stride: 2 pad: 1", (1, 2, 8, 7)),
    ("kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0", (2, 2, 5, 6)),
    ("kernel_size: 2 stride: 2", (3, 1, 4, 4)),
    ("kernel_size: 5 stride: 3 pad: 2", (1, 1, 11, 7)),
]


def _run(monkeypatch, numba, proto, x, dy_seed, n_top):
    monkeypatch.setenv("LOWBIT_NUMBA", numba)
    layer, bottom, top = build_layer('name: "p" type: "Pooling" pooling_param { pool: MAX %s }'
                                     % proto, [x], n_top=n_top, dtype=x.dtype)
    layer.forward(bottom, top)
    top[0].diff[...] = np.random.default_rng(dy_seed).standard_normal(top[0].shape)
    layer.backward(top, [True], bottom)
    return [t.data.copy() for t in top] + [bottom[0].diff.copy()]


@pytest.mark.skipif(not jit.available(), reason="numba missing")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("proto,shape", CASES)
@pytest.mark.parametrize("n_top", [1, 2])
def test_compiled_max_pool_matches_numpy(monkeypatch, dtype, proto, shape, n_top):
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(-3, 4, size=shape).astype(dtype)   # many ties
    x.reshape(-1)[::7] = -np.inf
    x.reshape(-1)[::11] = np.nan
    ref = _run(monkeypatch, "0", proto, x, 5, n_top)
    got = _run(monkeypatch, "1", proto, x, 5, n_top)
    for a, b in zip(got[:-1], ref[:-1]):
        np.testing.assert_array_equal(a, b)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got[-1], ref[-1], rtol=tol, atol=tol)


@pytest.mark.skipif(not jit.available(), reason="numba missing")
def test_compiled_max_pool_random_floats(monkeypatch):
    x = np.random.default_rng(0).standard_normal((4, 5, 13, 13)).astype(np.float32)
    ref = _run(monkeypatch, "0", "kernel_size: 3 stride: 2", x, 1, 1)
    got = _run(monkeypatch, "1", "kernel_size: 3 stride: 2", x, 1, 1)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-6, atol=1e-6)
