"""cpu.norm (Numba BatchNorm / Scale passes) against the layers' NumPy paths
(LOWBIT_NUMBA=0): outputs, running statistics, input and parameter gradients,
float32 and float64, odd shapes, in place and not; the kernels on empty arrays."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.cpu import jit, norm

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba missing")
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def _run(monkeypatch, numba, proto, x, in_place, dtype, steps=2):
    monkeypatch.setenv("LOWBIT_NUMBA", numba)
    rng = np.random.default_rng(3)
    layer, bottom, top = build_layer(proto, [x], dtype=dtype)
    if in_place:
        top = bottom
        layer.reshape(bottom, top)
    for blob in layer.blobs:
        if blob.count > 1:
            blob.data[...] = rng.standard_normal(blob.shape)
        blob.diff[...] = rng.standard_normal(blob.shape)
    out = []
    for _ in range(steps):    # twice: running statistics, accumulated diffs
        bottom[0].data[...] = x
        layer.forward(bottom, top)
        out.append(top[0].data.copy())
        top[0].diff[...] = rng.standard_normal(top[0].shape)
        layer.backward(top, [True], bottom)
        out.append(bottom[0].diff.copy())
    return out + [b.data.copy() for b in layer.blobs] + [b.diff.copy() for b in layer.blobs]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 7), (1, 2, 1), (3, 5), (2, 1, 9, 1)])
@pytest.mark.parametrize("proto,in_place", [
    ('name: "bn" type: "BatchNorm"', False),
    ('name: "bn" type: "BatchNorm"', True),
    ('name: "bn" type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 eps: 0.01 }',
     False),
    ('name: "s" type: "Scale" scale_param { bias_term: true }', True),
    ('name: "s" type: "Scale" scale_param { bias_term: true }', False),
    ('name: "s" type: "Scale"', True),
    ('name: "s" type: "Scale" scale_param { axis: 0 num_axes: 2 bias_term: true }', False),
])
def test_compiled_matches_numpy(monkeypatch, dtype, shape, proto, in_place):
    if "BatchNorm" in proto and shape[0] * int(np.prod(shape[2:])) < 2:
        pytest.skip("one value per channel")
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(dtype) * 3 + 1
    ref = _run(monkeypatch, "0", proto, x, in_place, dtype)
    got = _run(monkeypatch, "1", proto, x, in_place, dtype)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_on_empty_arrays(dtype):
    e3 = np.empty((0, 3, 4), dtype)
    mean, var = np.zeros(3), np.zeros(3)
    norm.bn_stats(np.empty((2, 3, 0), dtype), mean, var)   # no values: nan, as mean([])
    assert np.isnan(mean).all()
    std = np.ones(3, dtype)
    norm.bn_normalize(e3, mean.astype(dtype), std, e3.copy(), e3.copy())
    norm.bn_backward(e3, e3, std, e3.copy())
    ds, db = np.zeros(3, dtype), np.zeros(3, dtype)
    norm.scale_backward(e3, e3, std, ds, db, e3.copy())
    assert not ds.any() and not db.any()
    norm.scale_forward(e3, std, std, e3.copy(), np.empty((0, 0, 0), dtype))


def test_numpy_path_when_turned_off(monkeypatch):
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    layer, bottom, top = build_layer('name: "bn" type: "BatchNorm"',
                                     [np.arange(12.0).reshape(2, 3, 2)])
    assert not jit.runs(bottom[0].data)
    monkeypatch.setenv("LOWBIT_NUMBA", "1")
    assert jit.runs(bottom[0].data)
    assert not jit.runs(Blob((0, 3)).data)
    assert not jit.runs(np.arange(3))            # integers: not a float dtype


def test_batch_norm_passes_do_not_depend_on_the_thread_count(monkeypatch):
    """The parallel BatchNorm passes (split by (n, c) row) give the same bits on
    one thread and on two; Numba's count follows OpenMP's (cpu.onednn.threads)."""
    from pycaffe_lowbit.cpu import onednn
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 5, 33)) * 2 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for n in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
        monkeypatch.setattr(onednn, "threads", lambda n=n: n)
        mean, var = np.empty(5), np.empty(5)
        norm.bn_stats(x, mean, var)
        assert numba.get_num_threads() == n
        std = np.sqrt(var.astype(np.float32) + np.float32(1e-5))
        xn, y, dx = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        norm.bn_normalize(x, mean.astype(np.float32), std, xn, y)
        norm.bn_backward(dy, xn, std, dx)
        results.append((mean, var, y, dx))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(results[0][0], x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(results[0][1], x.astype(np.float64).var(axis=(0, 2)), rtol=1e-12)
