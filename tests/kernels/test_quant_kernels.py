"""quant.cu: every quantizer's kernel path against its NumPy path, on random
shapes with odd sizes and empty inputs, float32 and float64, into ``out`` and
in place; and the quantized layers launch every kernel of the family. The
golden cases and closed forms run through these kernels in tests/quant,
tests/layers and tests/golden (the ``kernels`` backend of ``xp``)."""
import numpy as np
import pytest

from pycaffe_lowbit import kernels, quant
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.quant.qnn import QNNActivation, QNNWeights
from pycaffe_lowbit.quant.weight_search import WeightSearch
from support.helpers import build_layer
from support.kernel_coverage import every_kernel, launches

SHAPES = [(0,), (1,), (7,), (3, 5), (2, 3, 17, 5)]
DTYPES = [np.float32, np.float64]
ACTIVATIONS = {
    "hwgq_3ne": lambda: quant.HWGQ([0.538, 1.076, 1.614]),
    "hwgq_2n_slope": lambda: quant.HWGQ([0.453, 1.51], 0.1),
    "sign": quant.Sign, "hard_tanh": quant.HardTanh, "leaky": lambda: quant.LeakyReLU(0.1),
    "qnn_ht0": lambda: QNNActivation(0, "hardtanh"), "qnn_ht2": lambda: QNNActivation(2),
    "qnn_relu3": lambda: QNNActivation(3, "relu"),
}
GRADIENTS = {
    "relu_clip": lambda: quant.ReLUGrad(0.1, 1.614), "relu": lambda: quant.ReLUGrad(0.0, 0),
    "hard_tanh_clip": lambda: quant.HardTanhGrad(1.0), "hard_tanh": lambda: quant.HardTanhGrad(0),
    "qnn_ht2": lambda: QNNActivation(2), "qnn_relu3": lambda: QNNActivation(3, "relu"),
}


def _x(shape, dtype, seed=0):
    """Values over the levels' range, with exact ties (0, -0.0, +-1, thresholds)."""
    x = (2 * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)
    flat = x.reshape(-1)
    specials = np.array([0.0, -0.0, 1.0, -1.0, np.float32(0.807), np.float32(1.614), 1.345,
                         0.25, -0.75], dtype)
    flat[:min(flat.size, specials.size)] = specials[:flat.size]
    return x


def _same(a, b):
    """Equal bits (so -0.0 and +0.0 differ), shapes and dtypes."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_equal_numpy(name, shape, dtype):
    x = _x(shape, dtype)
    ref = ACTIVATIONS[name]().forward(x)
    with launches() as seen:
        got = ACTIVATIONS[name]().forward(x)
        out = np.full_like(x, np.nan)
        into = ACTIVATIONS[name]().forward(x, out=out)
        in_place = x.copy()
        ACTIVATIONS[name]().forward(in_place, out=in_place)
    assert seen or x.size == 0
    assert into is out
    for y in (got, out, in_place):
        _same(y, ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_pseudo_gradients_equal_numpy(name, shape, dtype):
    x, dy = _x(shape, dtype), _x(shape, dtype, seed=1)
    ref = GRADIENTS[name]().backward(x, dy)
    with launches() as seen:
        got = GRADIENTS[name]().backward(x, dy)
        in_place = dy.copy()
        GRADIENTS[name]().backward(x, in_place, out=in_place)
    assert seen or x.size == 0
    _same(got, ref)
    _same(in_place, ref)


def _rows(num, k, dtype, seed=0):
    w = np.random.default_rng(seed).standard_normal((num, k)).astype(dtype)
    if w.size:
        w[0, :2] = [0.0, -0.0][:min(2, k)]
    return w


ROWS = [(0, 5), (1, 1), (3, 7), (16, 75), (5, 129)]
# The NumPy path's TWN threshold of an empty W is a mean of nothing (it warns).
EMPTY_MEAN = pytest.mark.filterwarnings("ignore:Mean of empty slice",
                                        "ignore:invalid value encountered")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,k", ROWS)
@pytest.mark.parametrize("use_alpha", [True, False])
def test_binary_weights_equal_numpy(num, k, dtype, use_alpha):
    """The same row sums (one BLAS gemv in both paths), so the same bits."""
    w = _rows(num, k, dtype)
    ref = quant.BinaryWeights(use_alpha).forward(w)
    with launches():
        _same(quant.BinaryWeights(use_alpha).forward(w), ref)


@EMPTY_MEAN
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,k", ROWS)
def test_ternary_weights_equal_numpy(num, k, dtype):
    """The same threshold; alpha summed in double per row (NumPy: pairwise in
    the dtype), so alpha within a few ulp and the same zeros."""
    w = _rows(num, k, dtype) + dtype(0.2)
    if num > 2:
        w[2] *= dtype(0.01)                      # a row entirely under the threshold
    ref = quant.TernaryWeights().forward(w)
    with launches():
        got = quant.TernaryWeights().forward(w)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_array_equal(got == 0, ref == 0)
    np.testing.assert_allclose(got, ref, rtol=4 * np.finfo(dtype).eps * max(k, 1), atol=0)


@EMPTY_MEAN
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,k", ROWS)
def test_row_errors_and_selection_equal_numpy(num, k, dtype):
    w = _rows(num, k, dtype)
    if num > 1:
        w[1] = 0                                  # error 0 for a zero row
    q = quant.BinaryWeights().forward(w)
    ref = quant.row_errors(w, q)
    with launches():
        got = quant.row_errors(w, q)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-12)

    def selected(emulated):
        backend.set_random_seed(3)
        sel = quant.StochasticSelection(quant.TernaryWeights(), 50)
        if emulated:
            with launches():
                return sel.forward(w), sel.selected
        return sel.forward(w), sel.selected
    (eff, mask), (eff_k, mask_k) = selected(False), selected(True)
    np.testing.assert_array_equal(mask_k, mask)   # the same host draw
    np.testing.assert_array_equal(eff_k[mask_k], w[mask_k])
    np.testing.assert_allclose(eff_k, eff, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nb,symmetric", [(0, False), (1, True), (2, False), (4, True)])
@pytest.mark.parametrize("shape", [(0, 3), (1, 1), (6, 13)])
def test_qnn_weights_equal_numpy(nb, symmetric, shape, dtype):
    w = np.random.default_rng(nb).uniform(-0.7, 0.7, shape).astype(dtype)
    if w.size:
        w.flat[0] = 0.0
    ref = QNNWeights(nb, symmetric).forward(w)
    with launches():
        _same(QNNWeights(nb, symmetric).forward(w), ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [True, False])
@pytest.mark.parametrize("shape", [(0, 4), (1, 3), (5, 7, 2), (33, 8)])
@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_weight_search_equals_numpy(shape, hard, dtype, noise):
    values = np.linspace(-1, 1.5, shape[-1])
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    dw = np.random.default_rng(2).standard_normal(shape[:-1]).astype(dtype)

    def run(emulated):
        backend.set_random_seed(7)
        ws = WeightSearch(values, hard=hard, gumbel_scale=noise)
        da = np.full_like(a, 0.5)
        if emulated:
            with launches():
                w, p = ws.forward(a, 0.7)
                ws.backward(p, dw, 0.7, into=da)
        else:
            w, p = ws.forward(a, 0.7)
            ws.backward(p, dw, 0.7, into=da)
        return w, p, da
    ref, got = run(False), run(True)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for r, g in zip(ref, got):
        assert r.shape == g.shape and r.dtype == g.dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)
    if hard:
        np.testing.assert_array_equal(got[0], ref[0])


# -- the layers launch every kernel of the family -------------------------------------
LAYERS = [
    'type: "Quant" quant_param { centers: 0.538 centers: 1.076 clip_thr: 1.2 }',
    'type: "Quant" quant_param { forward_func: "sign" backward_func: "hard_tanh" '
    'clip_thr: 1 }',
    'type: "Quant" quant_param { forward_func: "hard_tanh" }',
    'type: "QNNActivation" qnn_activation_param { nb: 2 }',
    'type: "BinaryConvolution" convolution_param { num_output: 4 kernel_size: 3 '
    'sq: true ratio: 50 weight_filler { type: "gaussian" } }',
    'type: "TernaryInnerProduct" inner_product_param { num_output: 5 '
    'weight_filler { type: "gaussian" } }',
    'type: "QNNConvolution" qnn_weight_param { nb: 3 } convolution_param { num_output: 2 '
    'kernel_size: 1 weight_filler { type: "gaussian" } }',
    'type: "WeightSearchInnerProduct" weight_search_param { value_set: "po2-2b" mode: SOFT '
    'gumbel_scale: 0.5 } inner_product_param { num_output: 3 }',
]


def _run_layer(text):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    layer, bottom, top = build_layer('name: "l" %s' % text, [x], dtype=np.float32)
    layer.forward(bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    return backend.to_numpy(top[0].data).copy(), backend.to_numpy(bottom[0].diff).copy()


@pytest.mark.parametrize("text", LAYERS)
def test_layers_through_kernels_equal_numpy(text):
    backend.set_random_seed(1)
    ref = _run_layer(text)
    backend.set_random_seed(1)
    with launches() as seen:
        got = _run_layer(text)
    assert {family for family, _ in seen} >= {"quant"}
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_every_quant_kernel_is_used():
    with launches() as seen:
        for text in LAYERS:
            _run_layer(text)
    assert every_kernel("quant") <= seen
    assert kernels.DEVICE_ONLY.get("quant") is None
