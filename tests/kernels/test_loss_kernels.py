"""loss.cu: SoftmaxWithLoss (any axis, ignore_label, every normalization mode
and the legacy normalize, the probability top), EuclideanLoss,
SigmoidCrossEntropyLoss, HingeLoss, MultinomialLogisticLoss, ContrastiveLoss
and InfogainLoss take their kernels, equal to the NumPy layers (loss weight
1.7) on odd shapes and empty batches in float32 and float64; a bad label is
refused with the layer's message; every kernel of the family is used."""
import numpy as np
import pytest

from pycaffe_lowbit.layers.base import LayerSetupError
from support.kernel_coverage import every_kernel, launches
from support.kernel_vs_numpy import assert_kernels_equal_numpy, run_layer

DTYPES = [np.float32, np.float64]
NORMS = ["", "normalization: FULL", "normalization: VALID", "normalization: BATCH_SIZE",
         "normalization: NONE", "normalize: true", "normalize: false"]


def _loss_param(norm, ignore):
    return "loss_param { %s %s }" % (norm, "" if ignore is None else "ignore_label: %d" % ignore)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _labels(shape, classes, ignored=None, seed=1):
    labels = _rng(seed).integers(0, classes, shape).astype(float)
    if ignored is not None and labels.size:
        labels.reshape(-1)[::3] = ignored
    return labels


# (scores shape, softmax axis)
SWL_SHAPES = [((4, 5), 1), ((2, 3, 4, 5), 1), ((2, 3, 5), 2), ((3, 1), 1), ((0, 5), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ignore", [None, 2])
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("shape, axis", SWL_SHAPES)
def test_softmax_with_loss(shape, axis, norm, ignore, dtype):
    classes = shape[axis]
    label_shape = shape[:axis] + shape[axis + 1:]
    text = 'type: "SoftmaxWithLoss" softmax_param { axis: %d } %s' % (
        axis, _loss_param(norm, ignore))
    bottoms = [_rng().standard_normal(shape) * 3, _labels(label_shape, classes, ignore)]
    for n_top in (1, 2):
        assert_kernels_equal_numpy(text, bottoms, dtype, n_top=n_top, propagate=[True, False])


def test_every_position_ignored():
    bottoms = [_rng().standard_normal((3, 4)), np.full(3, 7.0)]
    for norm in NORMS:
        text = 'type: "SoftmaxWithLoss" ' + _loss_param(norm, 7)
        assert_kernels_equal_numpy(text, bottoms, propagate=[True, False])


@pytest.mark.parametrize("text, bottoms", [
    ('type: "SoftmaxWithLoss"', [np.zeros((2, 3)), [0, 3]]),
    ('type: "SoftmaxWithLoss" loss_param { ignore_label: 5 }', [np.zeros((2, 3)), [-1, 5]]),
    ('type: "HingeLoss"', [np.zeros((2, 3)), [0, 4]]),
    ('type: "MultinomialLogisticLoss"', [np.full((2, 3), 0.3), [-1, 0]]),
    ('type: "InfogainLoss"', [np.zeros((2, 3)), [0, 3], np.eye(3)]),
])
def test_a_bad_label_is_refused_naming_the_layer(text, bottoms):
    for emulated in (False, True):
        with launches() if emulated else _nothing():
            with pytest.raises(LayerSetupError, match=r"'l'.*label values \(bottom 1\) must be integers"):
                run_layer(text, bottoms, backward=False)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # 0 / 0 on an empty batch, as Caffe
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", [[(4, 5), (4, 5)], [(3, 2, 3, 1), (3, 6)], [(0, 3), (0, 3)],
                                    [(1, 1), (1, 1)]])
def test_euclidean_loss(shapes, dtype):
    bottoms = [_rng(i).standard_normal(s) for i, s in enumerate(shapes)]
    assert_kernels_equal_numpy('type: "EuclideanLoss"', bottoms, dtype)
    assert_kernels_equal_numpy('type: "EuclideanLoss"', bottoms, dtype, propagate=[False, True])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("ignore", [None, 1])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 3), (0, 3)])
def test_sigmoid_cross_entropy_loss(shape, ignore, norm, dtype):
    text = 'type: "SigmoidCrossEntropyLoss" ' + _loss_param(norm, ignore)
    targets = _rng(1).uniform(0, 1, shape)
    if ignore is not None:
        targets.reshape(-1)[::4] = ignore
    bottoms = [_rng().standard_normal(shape) * 3, targets]
    assert_kernels_equal_numpy(text, bottoms, dtype, propagate=[True, False])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", ["L1", "L2"])
@pytest.mark.parametrize("shape", [(4, 5), (3, 2, 3, 1), (1, 7)])
def test_hinge_loss(shape, norm, dtype):
    classes = int(np.prod(shape[1:]))
    bottoms = [_rng().standard_normal(shape), _labels(shape[0], classes)]
    assert_kernels_equal_numpy('type: "HingeLoss" hinge_loss_param { norm: %s }' % norm,
                               bottoms, dtype, propagate=[True, False])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 5), (3, 2, 3, 1), (1, 7)])
def test_multinomial_logistic_loss(shape, dtype):
    p = _rng().uniform(0, 1, shape)
    p.reshape(-1)[::5] = 0                  # clamped at 1e-20
    classes = int(np.prod(shape[1:]))
    bottoms = [p, _labels(shape[0], classes, seed=3)]
    assert_kernels_equal_numpy('type: "MultinomialLogisticLoss"', bottoms, dtype,
                               propagate=[True, False])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("param", ["", "contrastive_loss_param { margin: 2 }",
                                   "contrastive_loss_param { legacy_version: true margin: 3 }"])
@pytest.mark.parametrize("num, channels", [(6, 3), (5, 1), (1, 4)])
def test_contrastive_loss(num, channels, param, dtype):
    a = _rng(0).standard_normal((num, channels, 1, 1))
    b = a * 0.3 + _rng(1).standard_normal(a.shape) * 0.5
    y = (np.arange(num) % 2).astype(float).reshape(num, 1, 1, 1)
    for down in ([True, True, False], [False, True, False]):
        assert_kernels_equal_numpy('type: "ContrastiveLoss" ' + param, [a, b, y], dtype,
                                   propagate=down)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm", NORMS[:5])
@pytest.mark.parametrize("ignore", [None, 0])
@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((2, 3, 5), 2), ((0, 3), 1)])
def test_infogain_loss(shape, axis, ignore, norm, dtype):
    classes = shape[axis]
    text = 'type: "InfogainLoss" infogain_loss_param { axis: %d } %s' % (
        axis, _loss_param(norm, ignore))
    h = _rng(4).uniform(0, 2, (classes, classes))
    bottoms = [_rng().standard_normal(shape) * 2,
               _labels(shape[:axis] + shape[axis + 1:], classes, ignore), h]
    for n_top in (1, 2):
        assert_kernels_equal_numpy(text, bottoms, dtype, n_top=n_top,
                                   propagate=[True, False, False])


def test_every_loss_kernel_is_used():
    scores, labels = _rng().standard_normal((4, 3)), _labels(4, 3)
    pairs = [_rng(0).standard_normal((4, 3, 1, 1)), _rng(1).standard_normal((4, 3, 1, 1)),
             np.array([0, 1, 0, 1.0]).reshape(4, 1, 1, 1)]
    seen = set()
    for text, bottoms in [
            ('type: "SoftmaxWithLoss"', [scores, labels]),
            ('type: "EuclideanLoss"', [scores, scores[::-1]]),
            ('type: "SigmoidCrossEntropyLoss"', [scores, _rng().uniform(0, 1, (4, 3))]),
            ('type: "HingeLoss"', [scores, labels]),
            ('type: "MultinomialLogisticLoss"', [np.abs(scores), labels]),
            ('type: "ContrastiveLoss"', pairs),
            ('type: "InfogainLoss"', [scores, labels, np.eye(3)])]:
        down = [True, True, False] if "Contrastive" in text or "Euclid" in text else \
            [True, False, False]
        seen |= assert_kernels_equal_numpy(text, bottoms, propagate=down[:len(bottoms)])
    seen = {k for k in seen if k[0] == "loss"}     # (and softmax.cu's forward)
    assert sorted(every_kernel("loss") - seen) == []
    assert seen == every_kernel("loss")
