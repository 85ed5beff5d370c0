"""InnerProduct: forward against X W^T + b, gradients, shapes, errors.
Caffe's own numbers: tests/golden/test_golden_layers.py."""
import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, layer_param, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.layers import LayerSetupError, create_layer


def _ip(params, x, xp=np, **kw):
    return build_layer('name: "ip" type: "InnerProduct" inner_product_param { %s }' % params,
                       [x], xp=xp, **kw)


@pytest.mark.parametrize("params,shape,axis", [
    ("num_output: 4", (2, 3, 2, 2), 1),
    ("num_output: 4 axis: 2", (2, 3, 5), 2),
    ("num_output: 4 axis: -1", (2, 3, 5), 2),
    ("num_output: 3 axis: 0", (4, 2), 0),
    ("num_output: 4 transpose: true", (3, 6), 1),
    ("num_output: 4 bias_term: false", (3, 6), 1),
])
def test_forward_matches_formula(xp, params, shape, axis):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    layer, bottom, top = _ip(params, x, xp)
    for blob in layer.blobs:
        blob.data[...] = xp.asarray(rng.standard_normal(blob.shape))
    (y,) = run_forward(layer, bottom, top)
    w = backend.to_numpy(layer.blobs[0].data)
    w = w if "transpose" in params else w.T
    x2 = x.reshape(int(np.prod(shape[:axis])), -1)
    ref = x2 @ w
    if len(layer.blobs) > 1:
        ref = ref + backend.to_numpy(layer.blobs[1].data)
    assert y.shape == shape[:axis] + (w.shape[1],)
    np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-12)


@pytest.mark.parametrize("params,shape", [
    ("num_output: 3", (2, 3, 2)),
    ("num_output: 3 axis: 2", (2, 2, 3)),
    ("num_output: 3 transpose: true", (3, 4)),
    ("num_output: 2 bias_term: false", (3, 4)),
])
def test_gradient(xp, params, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    layer, bottom, top = _ip(params + ' weight_filler { type: "gaussian" } '
                             'bias_filler { type: "gaussian" }' * ("bias_term" not in params),
                             x, xp)
    check_gradient(layer, bottom, top)


def test_param_diffs_accumulate_and_propagate_down(xp):
    rng = np.random.default_rng(2)
    layer, bottom, top = _ip('num_output: 3 weight_filler { type: "gaussian" }',
                             rng.standard_normal((4, 5)), xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = xp.asarray(rng.standard_normal(top[0].shape))
    layer.backward(top, [True], bottom)
    once = [backend.to_numpy(p.diff).copy() for p in layer.blobs]
    bottom[0].diff[...] = 7
    layer.param_propagate_down = [True, False]
    layer.backward(top, [False], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), 2 * once[0])
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[1].diff), once[1])
    assert (backend.to_numpy(bottom[0].diff) == 7).all()


def test_shapes_and_fillers():
    layer, _, top = _ip('num_output: 5 weight_filler { type: "constant" value: 2 } '
                        'bias_filler { type: "constant" value: 3 }', np.zeros((2, 3, 4)))
    assert layer.blobs[0].shape == (5, 12) and (layer.blobs[0].data == 2).all()
    assert layer.blobs[1].shape == (5,) and (layer.blobs[1].data == 3).all()
    assert top[0].shape == (2, 5)
    layer, _, top = _ip("num_output: 5 transpose: true axis: 2", np.zeros((2, 3, 4)))
    assert layer.blobs[0].shape == (4, 5) and top[0].shape == (2, 3, 5)


def test_reshape_keeps_k():
    layer, bottom, top = _ip("num_output: 2", np.zeros((2, 3, 4)))
    bottom[0].reshape(5, 12)
    run_forward(layer, bottom, top)
    assert top[0].shape == (5, 2)
    bottom[0].reshape(5, 13)
    with pytest.raises(LayerSetupError, match="Input size incompatible with inner product"):
        layer.reshape(bottom, top)


def test_errors():
    with pytest.raises(LayerSetupError, match="num_output must be > 0"):
        _ip("axis: 1", np.zeros((2, 3)))
    with pytest.raises(LayerSetupError, match="out of range"):
        _ip("num_output: 2 axis: 3", np.zeros((2, 3)))


def _with_blobs(shapes, legacy=False):
    lp = layer_param('name: "ip" type: "InnerProduct" inner_product_param { num_output: 2 }')
    for shape in shapes:
        bp = lp.blobs.add()
        if legacy:
            bp.num, bp.channels, bp.height, bp.width = (1,) * (4 - len(shape)) + shape
        else:
            bp.shape.dim.extend(shape)
        bp.data.extend(np.arange(np.prod(shape), dtype=np.float32))
    return lp


def test_preloaded_blobs():
    layer = create_layer(_with_blobs([(2, 3), (2,)], legacy=True))
    layer.setup([Blob((4, 3))], [Blob()])
    assert layer.blobs[0].shape == (2, 3) and layer.blobs[1].shape == (2,)
    np.testing.assert_array_equal(layer.blobs[0].data, np.arange(6).reshape(2, 3))
    layer = create_layer(_with_blobs([(3, 2), (2,)]))
    with pytest.raises(LayerSetupError, match="Incorrect weight shape"):
        layer.setup([Blob((4, 3))], [Blob()])
