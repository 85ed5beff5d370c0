"""bitpack.cu: packing, unpacking, popcount and the popcount GEMM equal the
NumPy path (the same integers) on odd sizes and empty inputs, and the packed
runtime's layers launch every kernel of the family. The packed products
against the unpacked integer math run through these kernels in tests/deploy
(the ``kernels`` backend of ``xp``)."""
import numpy as np
import pytest

from pycaffe_lowbit.deploy import bitops, packed_ops
from pycaffe_lowbit.deploy.runtime import PackedConvolution, PackedInnerProduct
from support.helpers import build_layer, run_forward
from support.kernel_coverage import every_kernel, launches

SIZES = [(0, 5), (3, 0), (1, 1), (4, 63), (2, 64), (5, 65), (3, 200)]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rows,k", SIZES)
@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int64, np.float32])
def test_pack_unpack_popcount_equal_numpy(rows, k, dtype):
    bits = (np.random.default_rng(k).integers(0, 3, (rows, k)) % 2).astype(dtype)
    words = bitops.pack_bits(bits)
    with launches() as seen:
        got = bitops.pack_bits(bits)
        back = bitops.unpack_bits(got, k)
        counts = bitops.popcount(got)
        into = np.zeros_like(counts)
        bitops.popcount(got, out=into)
    _same(got, words)
    _same(back, bitops.unpack_bits(words, k))
    _same(counts, bitops.popcount(words))
    _same(into, counts)
    assert seen or bits.size == 0 or words.size == 0


def test_pack_takes_a_strided_view_and_a_leading_shape():
    bits = np.random.default_rng(0).integers(0, 2, (2, 3, 150)).astype(bool)[:, :, ::2]
    with launches():
        got = bitops.pack_bits(bits)
    _same(got, bitops.pack_bits(bits))


@pytest.mark.parametrize("m,n,k", [(0, 3, 10), (3, 0, 10), (2, 3, 0), (1, 1, 1),
                                   (37, 11, 577), (5, 9, 128)])
@pytest.mark.parametrize("op", ["xor", "and"])
def test_popcount_gemm_equals_numpy_and_the_integer_math(m, n, k, op):
    rng = np.random.default_rng(m * 100 + n)
    a = rng.integers(0, 2, (m, k)).astype(bool)
    b = rng.integers(0, 2, (n, k)).astype(bool)
    pa, pb = bitops.pack_bits(a), bitops.pack_bits(b)
    with launches():
        got = bitops.popcount_gemm(pa, pb, op)
    _same(got, bitops.popcount_gemm(pa, pb, op))
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    exact = ai @ bi.T if op == "and" else ai @ (1 - bi).T + (1 - ai) @ bi.T
    np.testing.assert_array_equal(got, exact)


def test_an_unknown_op_is_refused_as_on_the_cpu():
    words = np.zeros((2, 1), np.uint64)
    with launches(), pytest.raises(KeyError):
        bitops.popcount_gemm(words, words, "or")


LEVELS = {"sign": [-1.0, 1.0], "3ne": [-0.0, 0.538, 1.076, 1.614],
          "2n": [-0.0, 0.453, 1.51]}


def _packed_layer(kind, levels, ternary):
    rng = np.random.default_rng(3)
    shape = (2, 3, 6, 7)
    x = np.asarray(LEVELS[levels], np.float32)[rng.integers(0, len(LEVELS[levels]), shape)]
    text = ('name: "c" type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 '
            'pad: 1 }' if kind == "conv" else
            'name: "ip" type: "InnerProduct" inner_product_param { num_output: 5 }')
    layer, bottom, top = build_layer(text, [x], dtype=np.float32)
    w = rng.choice([-1, 0, 1] if ternary else [-1, 1], layer.blobs[0].shape)
    rows = w.reshape(w.shape[0], -1)
    alpha = rng.uniform(0.2, 1, rows.shape[0]).astype(np.float32)
    packed = packed_ops.PackedWeights.from_signs(alpha, rows.astype(np.int8), w.shape,
                                                 ternary=ternary)
    cls = PackedConvolution if kind == "conv" else PackedInnerProduct
    wrapped = cls(layer, packed, packed_ops.ActivationCoding(LEVELS[levels]))
    return run_forward(wrapped, bottom, top)[0]


CASES = [("conv", "sign", False), ("conv", "3ne", True), ("ip", "2n", False),
         ("ip", "sign", True)]


@pytest.mark.parametrize("kind,levels,ternary", CASES)
def test_packed_layers_through_kernels_equal_numpy(kind, levels, ternary):
    ref = _packed_layer(kind, levels, ternary)
    with launches() as seen:
        got = _packed_layer(kind, levels, ternary)
    assert {f for f, _ in seen} >= {"bitpack"}
    np.testing.assert_array_equal(got, ref)


def test_every_bitpack_kernel_is_used():
    with launches() as seen:
        for case in CASES:
            _packed_layer(*case)
    assert every_kernel("bitpack") <= seen
