"""Blob: shapes, lazily allocated diffs, reshape semantics, sharing."""
import numpy as np
import pytest

from pycaffe_lowbit.core.blob import Blob


def test_shape_count_and_legacy_accessors():
    b = Blob((2, 3, 4, 5))
    assert b.shape == (2, 3, 4, 5) and b.count == 120 and b.num_axes == 4
    assert (b.num, b.channels, b.height, b.width) == (2, 3, 4, 5)
    assert Blob((7,)).width == 1 and Blob((7,)).num == 7
    assert b.count_range(1, 3) == 12
    assert b.canonical_axis(-1) == 3
    with pytest.raises(IndexError):
        b.canonical_axis(4)
    assert b.dtype == np.float32


def test_reshape_keeps_values_when_count_is_unchanged():
    b = Blob((2, 6))
    b.data[...] = np.arange(12).reshape(2, 6)
    b.reshape(3, 4)
    assert b.shape == (3, 4) and b.data[2, 3] == 11
    b.reshape((5,))
    assert b.shape == (5,) and not b.data.any()
    with pytest.raises(ValueError):
        b.reshape(-1, 2)


def test_diff_is_lazy_and_shaped():
    b = Blob((3, 2))
    assert b._diff is None
    assert b.diff.shape == (3, 2) and not b.diff.any()


def test_assignment_checks_shape():
    b = Blob((2, 2))
    b.data = np.ones((2, 2), np.float64)
    assert b.data.dtype == np.float32
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2, 2\)"):
        b.data = np.ones(3)


def test_share_data_views_other_blob():
    a = Blob((2, 6))
    b = Blob((12,))
    b.share_data(a)
    a.data[1, 5] = 3
    assert b.data[11] == 3
    with pytest.raises(ValueError):
        Blob((5,)).share_data(a)
