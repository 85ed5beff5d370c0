"""Dropout: TRAIN masks and scaling, TEST identity, scale_train, gradients, in-place use,
seeding, errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.layers import LayerSetupError
from pycaffe_lowbit.proto import caffe_pb2

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
HAS_SCALE_TRAIN = "scale_train" in caffe_pb2.DropoutParameter.DESCRIPTOR.fields_by_name


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _mask(layer):
    return backend.to_numpy(layer._mask).astype(np.float64)


def test_train_drops_and_scales(xp):
    x = _x((40, 50))
    layer, bottom, top = build_layer('type: "Dropout" dropout_param { dropout_ratio: 0.3 }',
                                     [x], xp=xp, phase=TRAIN)
    (y,) = run_forward(layer, bottom, top)
    mask = _mask(layer)
    assert abs(mask.mean() - 0.7) < 0.05
    np.testing.assert_allclose(y, x * mask / 0.7, rtol=1e-6)
    dy = _x((40, 50), 1)
    top[0].diff[...] = xp.asarray(dy)
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), dy * mask / 0.7, rtol=1e-6)


def test_default_ratio_and_new_mask_each_forward(xp):
    layer, bottom, top = build_layer('type: "Dropout"', [_x((30, 40))], xp=xp, phase=TRAIN)
    assert layer.ratio == 0.5
    run_forward(layer, bottom, top)
    first = _mask(layer)
    run_forward(layer, bottom, top)
    assert abs(first.mean() - 0.5) < 0.06 and (first != _mask(layer)).any()


def test_masks_follow_the_seed(xp):
    masks = []
    for _ in range(2):
        backend.set_random_seed(7)
        layer, bottom, top = build_layer('type: "Dropout"', [_x((8, 9))], xp=xp, phase=TRAIN)
        run_forward(layer, bottom, top)
        masks.append(_mask(layer))
    np.testing.assert_array_equal(masks[0], masks[1])


def test_test_phase_is_identity(xp):
    x = _x((2, 3, 4))
    layer, bottom, top = build_layer('type: "Dropout" dropout_param { dropout_ratio: 0.3 }',
                                     [x], xp=xp, phase=TEST)
    np.testing.assert_array_equal(run_forward(layer, bottom, top)[0], x)
    top[0].diff[...] = 2
    layer.backward(top, [True], bottom)
    assert (backend.to_numpy(bottom[0].diff) == 2).all()
    check_gradient(layer, bottom, top)


def test_train_gradient_with_a_fixed_mask(xp):
    layer, bottom, top = build_layer('type: "Dropout" dropout_param { dropout_ratio: 0.4 }',
                                     [_x((3, 4))], xp=xp, phase=TRAIN)
    fixed = xp.asarray(np.random.default_rng(3).random((3, 4)) >= 0.4)
    layer.draw_mask = lambda shape, xp_: fixed
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("phase, factor", [(TRAIN, None), (TEST, 0.75)])
def test_scale_train_false(xp, phase, factor):
    x = _x((20, 10))
    if HAS_SCALE_TRAIN:
        text = 'type: "Dropout" dropout_param { dropout_ratio: 0.25 scale_train: false }'
        layer, bottom, top = build_layer(text, [x], xp=xp, phase=phase)
    else:  # the schema lacks the fork field: set what it would set
        layer, bottom, top = build_layer(
            'type: "Dropout" dropout_param { dropout_ratio: 0.25 }', [x], xp=xp, phase=phase)
        layer.scale_train = False
    assert layer.scale_train is False
    (y,) = run_forward(layer, bottom, top)
    factor = _mask(layer) if factor is None else factor  # TRAIN: y = x * mask, unscaled
    np.testing.assert_allclose(y, x * factor, rtol=1e-6)
    top[0].diff[...] = 1
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), np.ones_like(x) * factor,
                               rtol=1e-6)


@pytest.mark.parametrize("phase", [TRAIN, TEST])
def test_in_place(xp, phase):
    x = _x((5, 6))
    layer, bottom, _ = build_layer('type: "Dropout"', [x], xp=xp, phase=phase)
    top = bottom
    (y,) = run_forward(layer, bottom, top)
    mask = _mask(layer) * 2 if phase == TRAIN else 1
    np.testing.assert_allclose(y, x * mask)
    top[0].diff[...] = 3
    layer.backward(top, [True], bottom)
    np.testing.assert_allclose(backend.to_numpy(bottom[0].diff), 3 * np.ones_like(x) * mask)


@pytest.mark.parametrize("ratio", ["1.0", "-0.1", "1.5"])
def test_bad_ratio(xp, ratio):
    with pytest.raises(LayerSetupError, match=r"dropout_ratio must be in \[0, 1\)"):
        build_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: %s }' % ratio,
                    [_x((2, 3))], xp=xp)
