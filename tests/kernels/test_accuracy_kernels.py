"""accuracy.cu: Accuracy (top-k with Caffe's ties, ignore_label, any axis, the
per-class top) takes its kernels, equal to the NumPy layer on odd shapes and
empty batches in float32 and float64; every kernel of the family is used."""
import numpy as np
import pytest

from support.kernel_coverage import every_kernel
from support.kernel_vs_numpy import assert_kernels_equal_numpy

# (scores shape, axis)
SHAPES = [((6, 5), 1), ((2, 4, 3, 2), 1), ((2, 3, 6), 2), ((7, 1), 1), ((0, 5), 1)]


def _case(shape, axis, ignore, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, shape).astype(float)      # many ties
    labels = rng.integers(0, shape[axis], shape[:axis] + shape[axis + 1:]).astype(float)
    if ignore is not None and labels.size:
        labels.reshape(-1)[::3] = ignore
    return [x, labels]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_top", [1, 2])
@pytest.mark.parametrize("top_k", [1, 3])
@pytest.mark.parametrize("ignore", [None, 0])
@pytest.mark.parametrize("shape, axis", SHAPES)
def test_accuracy(shape, axis, ignore, top_k, n_top, dtype):
    if top_k > shape[axis]:
        top_k = shape[axis]
    text = 'type: "Accuracy" accuracy_param { top_k: %d axis: %d%s }' % (
        top_k, axis, "" if ignore is None else " ignore_label: %d" % ignore)
    assert_kernels_equal_numpy(text, _case(shape, axis, ignore), dtype, n_top=n_top,
                               backward=False)


def test_every_accuracy_kernel_is_used():
    seen = assert_kernels_equal_numpy('type: "Accuracy"', _case((6, 5), 1, None), n_top=2,
                                      backward=False)
    assert seen == every_kernel("accuracy")
