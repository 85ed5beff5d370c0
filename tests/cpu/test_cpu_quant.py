"""cpu.quant (Numba HWGQ forward and ReLU pseudo-gradient) against
quant.activations through the Quant layer (LOWBIT_NUMBA=0): bit-equal values
and gradients, float32 and float64, in place and not, values on the
thresholds, -0.0, NaN, clipping; the kernels on empty arrays."""
import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import jit, quant as cpu_quant

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba missing")
PARAMS = [
    "centers: 0.538 centers: 1.076 centers: 1.614",
    "centers: 0.5 centers: 1.5 negative_slope: 0.1 clip_thr: 1.2",
    "centers: 0.25 clip_thr: -1",
    "centers: 1 centers: 2 backward_func: 'relu' negative_slope: 0.2",
]


def _run(monkeypatch, numba, params, x, in_place):
    monkeypatch.setenv("LOWBIT_NUMBA", numba)
    layer, bottom, top = build_layer('name: "q" type: "Quant" quant_param { %s }' % params,
                                     [x], dtype=x.dtype)
    if in_place:
        top = bottom
        layer.reshape(bottom, top)
    layer.forward(bottom, top)
    y = top[0].data.copy()
    top[0].diff[...] = np.random.default_rng(4).standard_normal(top[0].shape)
    layer.backward(top, [True], bottom)
    return y, bottom[0].diff.copy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("in_place", [False, True])
def test_compiled_matches_numpy(monkeypatch, dtype, params, in_place):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 5, 7)) * 1.5).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [0.0, -0.0, np.nan, 0.807, 1.345, 1.2]     # zeros, NaN, on t_i, on clip
    flat[6:8] = np.asarray([0.538, 1.076], np.float32) / 2 + np.asarray([1.076, 1.614],
                                                                        np.float32) / 2
    ref = _run(monkeypatch, "0", params, x.copy(), in_place)
    got = _run(monkeypatch, "1", params, x.copy(), in_place)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_on_empty_arrays(dtype):
    e = np.empty(0, dtype)
    t, c = np.asarray([0.5], dtype), np.asarray([0.25, 0.75], dtype)
    assert cpu_quant.hwgq_forward(e, t, c, dtype(0), e.copy()).size == 0
    assert cpu_quant.relu_grad(e, e, dtype(0), dtype(1), True, e.copy()).size == 0


@pytest.mark.parametrize("layout", ["fresh", "strided"])
def test_the_quantizer_itself_takes_the_compiled_pass(monkeypatch, layout):
    """Called directly (not through the layer), as deploy's converters call it:
    a new output (out=None) on a C-contiguous array runs cpu.quant; a strided
    view keeps the NumPy path. Either way the values equal the reference."""
    from pycaffe_lowbit import quant
    value, grad = quant.HWGQ([0.538, 1.076, 1.614], 0.1), quant.ReLUGrad(0.1, 1.2)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 10)) * 1.5).astype(np.float32)
    dy = rng.standard_normal((6, 10)).astype(np.float32)
    if layout == "strided":
        x, dy = x[:, ::2], dy[:, ::2]
    monkeypatch.setenv("LOWBIT_NUMBA", "1")
    calls = []
    for name in ("hwgq_forward", "relu_grad"):
        real = getattr(cpu_quant, name)
        monkeypatch.setattr(cpu_quant, name,
                            lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    got = value.forward(x), grad.backward(x, dy)
    assert calls == ([] if layout == "strided" else ["hwgq_forward", "relu_grad"])
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    ref = value.forward(x), grad.backward(x, dy)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("use_alpha", [True, False])
def test_binary_weights_compiled_bit_equal(monkeypatch, dtype, use_alpha):
    """BWN's Q = a_n s(W) with |W| and the signs on the threads (cpu.quant)
    equals the NumPy passes bit for bit, zeros of both signs included."""
    from pycaffe_lowbit.quant import BinaryWeights
    rng = np.random.default_rng(6)
    w = rng.standard_normal((37, 129)).astype(dtype)
    w[0, :5] = [0.0, -0.0, 1e-30, -1e-30, 2.0]
    w[3] = 0
    q = BinaryWeights(use_alpha)
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    ref = q.forward(w, out=np.empty_like(w))
    monkeypatch.setenv("LOWBIT_NUMBA", "1")
    out = np.empty_like(w)
    got = q.forward(w, out=out)
    assert got is out
    assert np.array_equal(got, ref) and np.array_equal(np.signbit(got), np.signbit(ref))


def test_weight_kernels_on_empty_rows():
    w = np.empty((0, 4), np.float32)
    assert cpu_quant.abs_rows(w, np.empty_like(w)).shape == (0, 4)
    assert cpu_quant.signed_rows(w, np.empty(0, np.float32), np.empty_like(w)).shape == (0, 4)
