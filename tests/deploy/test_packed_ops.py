"""Bit packing and the packed products: exact against unpacked integer math
(on every backend of the ``xp`` fixture: the ``kernels`` one runs bitpack.cu)."""
import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.deploy import bitops, packed_ops

host = backend.to_numpy

HWGQ_3NE = [-0.0, 0.538, 1.076, 1.614]
HWGQ_2N = [-0.0, 0.453, 1.51]


@pytest.mark.parametrize("k", [1, 63, 64, 65, 130, 800])
def test_pack_unpack_round_trip_and_zero_tail(k, xp):
    rng = np.random.default_rng(k)
    bits = rng.integers(0, 2, (3, 5, k)).astype(np.uint8)
    words = bitops.pack_bits(xp.asarray(bits))
    assert words.dtype == np.uint64 and words.shape == (3, 5, (k + 63) // 64)
    np.testing.assert_array_equal(host(bitops.unpack_bits(words, k)), bits)
    assert int(bitops.popcount(words).sum()) == int(bits.sum())  # the tail bits are 0
    np.testing.assert_array_equal(host(words), bitops.pack_bits(bits.astype(bool)))
    # element j is bit j % 64 of word j // 64
    one = np.zeros(k, np.uint8)
    one[k - 1] = 1
    assert host(bitops.pack_bits(xp.asarray(one)))[(k - 1) // 64] == \
        np.uint64(1) << np.uint64((k - 1) % 64)


def test_swar_fallback_equals_bitwise_count():
    x = np.random.default_rng(0).integers(0, 2 ** 63, 1000, dtype=np.uint64) * np.uint64(3)
    np.testing.assert_array_equal(bitops._swar_popcount(x, np), np.bitwise_count(x))


@pytest.mark.parametrize("k", [7, 64, 100, 577])
def test_popcount_gemm_xnor_identity(k, xp):
    rng = np.random.default_rng(k)
    a = rng.choice([-1, 1], (37, k))
    b = rng.choice([-1, 1], (11, k))
    pa, pb = bitops.pack_bits(xp.asarray(a > 0)), bitops.pack_bits(xp.asarray(b > 0))
    xor = host(bitops.popcount_gemm(pa, pb, "xor"))
    assert xor.dtype == np.int32 and xor.shape == (37, 11)
    np.testing.assert_array_equal(k - 2 * xor.astype(np.int64), a @ b.T)
    both = host(bitops.popcount_gemm(pa, pb, "and"))
    np.testing.assert_array_equal(both, (a > 0).astype(int) @ (b > 0).T.astype(int))
    with pytest.raises(ValueError, match="words per row"):
        bitops.popcount_gemm(pa, xp.zeros((2, 20), np.uint64))


def _weights(rng, n, k, ternary):
    s = rng.choice([-1, 0, 1] if ternary else [-1, 1], (n, k)).astype(np.int8)
    alpha = rng.uniform(0.1, 1, n).astype(np.float32)
    return s, alpha, packed_ops.PackedWeights.from_signs(alpha, s, s.shape)


@pytest.mark.parametrize("levels", [[-1.0, 1.0], HWGQ_3NE, HWGQ_2N, [-0.1, 0.538, 1.076, 1.614]])
@pytest.mark.parametrize("ternary", [False, True])
@pytest.mark.parametrize("k", [25, 64, 129])
def test_packed_integer_dots_are_exact(levels, ternary, k, xp):
    rng = np.random.default_rng(k)
    coding = packed_ops.ActivationCoding(levels)
    s, alpha, w = _weights(rng, 9, k, ternary)
    np.testing.assert_array_equal(w.signs(), s)
    w = w.to(xp)
    idx = rng.integers(0, len(levels), (23, k)).astype(np.uint8)
    dots = packed_ops.integer_dots(xp.asarray(idx), coding, w)
    dots = host(dots) if coding.uniform else [host(d) for d in dots]
    planes = [p.astype(np.int64) for p in coding.planes(idx)]
    if coding.uniform:
        np.testing.assert_array_equal(dots, idx.astype(np.int64) @ s.T.astype(np.int64))
    else:
        for d, p in zip(dots, planes):
            np.testing.assert_array_equal(d, p @ s.T.astype(np.int64))
    # and the float result equals the float product of the decoded values
    x = np.asarray(levels, np.float32)[idx]
    y = host(packed_ops.packed_matmul(xp.asarray(idx), coding, w))
    ref = (x.astype(np.float64) @ (alpha[:, None] * s).T.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-5)


def test_coding_of_quantizer_levels():
    c = packed_ops.ActivationCoding(HWGQ_3NE)
    assert c.uniform and c.n_planes == 2 and c.base == 0
    x = np.array([-0.0, 0.0, 0.538, 1.076, 1.614], np.float32)
    np.testing.assert_array_equal(c.index(x), [0, 0, 1, 2, 3])
    c2 = packed_ops.ActivationCoding(HWGQ_2N)
    assert not c2.uniform and c2.n_planes == 2
    sign = packed_ops.ActivationCoding([1, -1])
    assert sign.is_sign and sign.base == -1 and sign.coefs == [2.0]
    np.testing.assert_array_equal(sign.index(np.array([-1, 0, 1], np.float32)), [0, 0, 1])
    with pytest.raises(ValueError, match="two distinct levels"):
        packed_ops.ActivationCoding([1, 1])
