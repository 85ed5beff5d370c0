"""The Numba popcount kernels (cpu/popcount.py) against their NumPy references
(deploy/bitops.py, deploy/packed_ops.py): exact, on odd sizes, and the NumPy
fallback when Numba is off."""
import numpy as np
import pytest

from pycaffe_lowbit.deploy import bitops, packed_cpu, packed_ops

kpop = pytest.importorskip("pycaffe_lowbit.cpu.popcount")
kpack = pytest.importorskip("pycaffe_lowbit.cpu.pack")
pytestmark = pytest.mark.skipif(not kpop.available(), reason="numba off or missing")

LEVELS = {"sign": [-1.0, 1.0], "3ne": [-0.0, 0.538, 1.076, 1.614],
          "2n": [-0.0, 0.453, 1.51], "3ne_slope": [-0.1, 0.538, 1.076, 1.614],
          "sym3": [-1.0, 0.0, 1.0]}   # uniform with a base


def _words(rng, shape):
    return rng.integers(0, 2 ** 63, shape, dtype=np.uint64) * np.uint64(3) + np.uint64(1)


@pytest.mark.parametrize("m,n,w", [(0, 3, 2), (3, 0, 2), (2, 3, 0), (1, 1, 1), (1, 7, 9),
                                   (5, 1, 17), (37, 11, 5), (9, 13, 16), (6, 5, 24),
                                   (7, 33, 3), (70, 65, 2)])
@pytest.mark.parametrize("op", ["and", "xor"])
def test_gemm_equals_numpy(m, n, w, op):
    rng = np.random.default_rng(m * 100 + n * 10 + w)
    a, b = _words(rng, (m, w)), _words(rng, (n, w))
    got = kpop.popcount_gemm(a, b, op)
    assert got.dtype == np.int32 and got.shape == (m, n)
    np.testing.assert_array_equal(got, bitops.popcount_gemm(a, b, op))
    with pytest.raises(ValueError, match="words per row"):
        kpop.popcount_gemm(a, _words(rng, (2, w + 1)), op)


@pytest.mark.parametrize("levels", sorted(LEVELS))
@pytest.mark.parametrize("k", [1, 63, 64, 65, 200, 577])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pack_rows_equals_numpy(levels, k, dtype):
    rng = np.random.default_rng(k)
    coding = packed_ops.ActivationCoding(LEVELS[levels])
    x = rng.normal(0.5, 1, (7, k)).astype(dtype)
    x[0, 0] = np.nan
    idx = coding.index(x)
    want = np.stack([bitops.pack_bits(p) for p in coding.planes(idx)])
    nw = want.shape[-1] + 3                      # padded rows: the extra words stay 0
    got = np.full((coding.n_planes, 7, nw), 7, np.uint64)
    kpack.pack_rows(x, coding.midpoints, coding.uniform, got)
    np.testing.assert_array_equal(got[..., :want.shape[-1]], want)
    assert not got[..., want.shape[-1]:].any()


def _plan_and_reference(rng, levels, ternary, n, shape_in, conv, with_bias=True):
    coding = packed_ops.ActivationCoding(LEVELS[levels])
    k = int(np.prod(conv[1:])) if conv else int(np.prod(shape_in[1:]))
    s = rng.choice([-1, 0, 1] if ternary else [-1, 1], (n, k)).astype(np.int8)
    w = packed_ops.PackedWeights.from_signs(rng.uniform(0.1, 1, n).astype(np.float32), s,
                                            conv or s.shape, ternary=ternary)
    bias = rng.standard_normal(n).astype(np.float32)
    if not with_bias:
        bias = np.zeros(n, np.float32)
    x = np.asarray(LEVELS[levels], np.float32)[rng.integers(0, len(LEVELS[levels]), shape_in)]
    return coding, w, bias, x, packed_cpu.FastPlan(w, coding, bias if with_bias else None, conv)


@pytest.mark.parametrize("levels", sorted(LEVELS))
@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("m,k,n", [(1, 100, 1), (5, 64, 9), (0, 70, 3), (13, 700, 6),
                                   (9, 130, 70)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_inner_product_bit_equal(levels, ternary, m, k, n, with_bias):
    rng = np.random.default_rng(m + k + n)
    coding, w, bias, x, plan = _plan_and_reference(rng, levels, ternary, n, (m, k), None,
                                                   with_bias)
    want = packed_ops.packed_matmul(coding.index(x), coding, w)
    if with_bias:
        want += bias
    got = plan.inner_product(x)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))  # bit for bit


def _conv_reference(x, coding, w, bias, kernel, stride, pad, out_size):
    """packed_matmul on the column matrix of level indices (padding: index 0)."""
    from pycaffe_lowbit.layers._im2col import im2col
    nb = x.shape[0]
    idx = coding.index(x)
    cols = im2col(idx, kernel, stride, pad, (1, 1), out_size, batch_first=True)
    length = int(np.prod(out_size))
    rows = np.ascontiguousarray(cols.reshape(nb, -1, length).transpose(0, 2, 1)).reshape(
        nb * length, -1)
    valid = None
    if any(pad) and coding.base != 0:
        ones = np.ones((1,) + x.shape[1:], np.float32)
        vcols = im2col(ones, kernel, stride, pad, (1, 1), out_size, batch_first=True)
        valid = (vcols.reshape(-1, length).T @ w.signs().T.astype(np.float32)).round().astype(
            np.int64)
    v = None if valid is None else np.broadcast_to(valid[None], (nb,) + valid.shape).reshape(
        nb * length, -1)
    y = packed_ops.packed_matmul(rows, coding, w, v).reshape(nb, length, -1).transpose(0, 2, 1)
    return y + bias.reshape(1, -1, 1), valid


@pytest.mark.parametrize("levels", sorted(LEVELS))
@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("geom", [((3, 3), (1, 1), (1, 1), 5, 9, 7),
                                  ((5, 5), (1, 1), (2, 2), 70, 6, 6),
                                  ((3, 2), (2, 1), (1, 0), 3, 7, 5),
                                  ((1, 1), (1, 1), (0, 0), 130, 4, 3),
                                  ((3, 3), (1, 1), (1, 1), 96, 5, 6),    # 32-bit units
                                  ((2, 2), (2, 2), (0, 0), 64, 5, 5),    # words
                                  ((3, 3), (1, 1), (1, 1), 16, 4, 4),    # 16-bit units
                                  ((2, 3), (1, 2), (1, 1), 24, 5, 4)])   # bytes
def test_convolution_bit_equal(levels, ternary, geom):
    """Both column builders: shifted words (C % 8 != 0) and whole units."""
    kernel, stride, pad, ch, h, wd = geom
    rng = np.random.default_rng(ch)
    n = 5
    conv = (n, ch) + kernel
    coding, w, bias, x, plan = _plan_and_reference(rng, levels, ternary, n, (2, ch, h, wd), conv)
    out_size = tuple((s + 2 * p - k) // st + 1 for s, p, k, st in
                     zip((h, wd), pad, kernel, stride))
    want, valid = _conv_reference(x, coding, w, bias, kernel, stride, pad, out_size)
    got = plan.convolution(x, kernel, stride, pad, (1, 1), out_size, valid)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


def test_block_kernel_uses_the_hardware_popcount():
    """The block kernel's asm counts with vpopcntq (or popcnt on CPUs without
    AVX512-VPOPCNTDQ); inspected on a fresh compile of the generic GEMM."""
    import re
    rng = np.random.default_rng(5)
    a, b = _words(rng, (5, 3)), _words(rng, (4, 3))
    fresh = kpop._gemm.py_func
    jit = pytest.importorskip("numba").njit(parallel=True)(fresh)
    out = np.empty((5, 4), np.int32)
    jit(a[None], kpop.transpose_words(b), 4, False, out)
    np.testing.assert_array_equal(out, bitops.popcount_gemm(a, b, "and"))
    asm = "\n".join(jit.inspect_asm().values())
    assert re.search(r"\b(vpopcntq|popcnt[lq]?)\b", asm)


def test_thread_count_does_not_change_the_result():
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    coding, w, bias, x, plan = _plan_and_reference(rng, "3ne", False, 37, (41, 600), None)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = plan.inner_product(x)
        numba.set_num_threads(max(2, before) if numba.config.NUMBA_NUM_THREADS > 1 else 1)
        two = plan.inner_product(x)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_numpy_fallback_when_numba_is_off(monkeypatch):
    """LOWBIT_NUMBA=0 (or numba missing): the packed layers take the NumPy path,
    with the same result."""
    from support.helpers import build_layer, run_forward
    from pycaffe_lowbit.deploy.runtime import PackedInnerProduct
    rng = np.random.default_rng(4)
    levels = LEVELS["3ne"]
    x = np.asarray(levels, np.float32)[rng.integers(0, 4, (6, 3, 5, 5))]
    layer, bottom, top = build_layer(
        'name: "ip" type: "InnerProduct" inner_product_param { num_output: 7 }', [x],
        dtype=np.float32, xp=np)
    s = rng.choice([-1, 1], (7, 75)).astype(np.int8)
    packed = packed_ops.PackedWeights.from_signs(np.ones(7, np.float32), s, s.shape)
    fast = run_forward(PackedInnerProduct(layer, packed, packed_ops.ActivationCoding(levels)),
                       bottom, top)[0].copy()
    monkeypatch.setenv("LOWBIT_NUMBA", "0")
    assert not kpop.available() and not packed_cpu.usable(np)
    wrapped = PackedInnerProduct(layer, packed, packed_ops.ActivationCoding(levels))
    np.testing.assert_array_equal(run_forward(wrapped, bottom, top)[0], fast)
    assert wrapped._plan is None
    monkeypatch.delenv("LOWBIT_NUMBA")
    monkeypatch.setattr(kpop, "numba", None)
    assert not kpop.available()
