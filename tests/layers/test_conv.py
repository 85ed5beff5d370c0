"""Convolution, Deconvolution and Im2col: naive references, gradients, shapes,
errors. Caffe's own numbers: tests/golden/test_golden_layers.py."""
import itertools

import numpy as np
import pytest

from support.helpers import build_layer, check_gradient, layer_param, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.layers import LayerSetupError, conv as conv_mod, create_layer
from pycaffe_lowbit.layers._im2col import conv_out_size, deconv_out_size


# -- naive references (loops over everything, float64) --------------------------
def _positions(q, j, stride, pad, dilation):
    return tuple(qa * s - p + ja * d for qa, ja, s, p, d in zip(q, j, stride, pad, dilation))


def _inside(pos, size):
    return all(0 <= a < s for a, s in zip(pos, size))


def naive_conv(x, w, b, stride, pad, dilation, group=1):
    n, c = x.shape[:2]
    size, kernel = x.shape[2:], w.shape[2:]
    o_n = w.shape[0]
    out = tuple(conv_out_size(*a) for a in zip(size, kernel, stride, pad, dilation))
    y = np.zeros((n, o_n) + out)
    og, cg = o_n // group, c // group
    for i, o in itertools.product(range(n), range(o_n)):
        g = o // og
        for q in np.ndindex(*out):
            acc = 0.0 if b is None else b[o]
            for cc, j in itertools.product(range(cg), np.ndindex(*kernel)):
                pos = _positions(q, j, stride, pad, dilation)
                if _inside(pos, size):
                    acc += w[(o, cc) + j] * x[(i, g * cg + cc) + pos]
            y[(i, o) + q] = acc
    return y


def naive_deconv(x, w, b, stride, pad, dilation, group=1):
    n, c = x.shape[:2]
    size, kernel = x.shape[2:], w.shape[2:]
    og = w.shape[1]
    o_n, cg = og * group, c // group
    out = tuple(deconv_out_size(*a) for a in zip(size, kernel, stride, pad, dilation))
    y = np.zeros((n, o_n) + out)
    for i, ch in itertools.product(range(n), range(c)):
        g = ch // cg
        for q in np.ndindex(*size):
            for oo, j in itertools.product(range(og), np.ndindex(*kernel)):
                pos = _positions(q, j, stride, pad, dilation)
                if _inside(pos, out):
                    y[(i, g * og + oo) + pos] += x[(i, ch) + q] * w[(ch, oo) + j]
    if b is not None:
        y += b.reshape((-1,) + (1,) * len(size))
    return y


def naive_im2col(x, kernel, stride, pad, dilation):
    n, c = x.shape[:2]
    size = x.shape[2:]
    out = tuple(conv_out_size(*a) for a in zip(size, kernel, stride, pad, dilation))
    k = int(np.prod(kernel))
    col = np.zeros((n, c * k) + out)
    for i, ch in itertools.product(range(n), range(c)):
        for r, j in enumerate(np.ndindex(*kernel)):
            for q in np.ndindex(*out):
                pos = _positions(q, j, stride, pad, dilation)
                if _inside(pos, size):
                    col[(i, ch * k + r) + q] = x[(i, ch) + pos]
    return col


def _set_params(layer, xp, *arrays):
    for blob, a in zip(layer.blobs, arrays):
        blob.data[...] = xp.asarray(a)


def _rng(seed=0):
    return np.random.default_rng(seed)


# -- forward against the references ------------------------------------------------
CONV_CASES = [
    # (x shape, prototxt conv params, weight kernel, stride, pad, dilation, group)
    ((2, 3, 5, 5), "num_output: 4 kernel_size: 3", (3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((2, 3, 6, 5), "num_output: 2 kernel_size: 3 pad: 1 stride: 2", (3, 3), (2, 2),
     (1, 1), (1, 1), 1),
    ((1, 4, 7, 7), "num_output: 6 kernel_size: 3 pad: 2 dilation: 2 group: 2", (3, 3),
     (1, 1), (2, 2), (2, 2), 2),
    ((2, 2, 7, 8), "num_output: 3 kernel_h: 3 kernel_w: 2 pad_h: 1 pad_w: 0 stride_h: 1 "
     "stride_w: 2", (3, 2), (1, 2), (1, 0), (1, 1), 1),
    ((1, 2, 6, 7), "num_output: 2 kernel_size: 2 kernel_size: 3 stride: 1 stride: 2 "
     "pad: 1 pad: 0 dilation: 2 dilation: 1", (2, 3), (1, 2), (1, 0), (2, 1), 1),
    ((2, 3, 4, 5, 4), "num_output: 2 kernel_size: 2 pad: 1 stride: 2", (2, 2, 2),
     (2, 2, 2), (1, 1, 1), (1, 1, 1), 1),
    ((2, 4, 9), "num_output: 4 kernel_size: 3 stride: 2 group: 4", (3,), (2,), (0,), (1,), 4),
    ((1, 2, 2, 3), "num_output: 2 kernel_size: 3 stride: 2", (3, 3), (2, 2), (0, 0),
     (1, 1), 1),  # 2 + 0 - 3 = -1: C++ division truncates, one partial window
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: c[1][:40])
def test_convolution_forward_matches_naive(xp, case):
    shape, params, kernel, stride, pad, dilation, group = case
    rng = _rng(1)
    x = rng.standard_normal(shape)
    layer, bottom, top = build_layer(
        'type: "Convolution" convolution_param { %s }' % params, [x], xp=xp)
    w = rng.standard_normal(layer.blobs[0].shape)
    b = rng.standard_normal(layer.blobs[1].shape)
    _set_params(layer, xp, w, b)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, naive_conv(x, w, b, stride, pad, dilation, group),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES[:7], ids=lambda c: c[1][:40])
def test_deconvolution_forward_matches_naive(xp, case):
    shape, params, kernel, stride, pad, dilation, group = case
    rng = _rng(2)
    x = rng.standard_normal(shape)
    layer, bottom, top = build_layer(
        'type: "Deconvolution" convolution_param { %s }' % params, [x], xp=xp)
    w = rng.standard_normal(layer.blobs[0].shape)
    b = rng.standard_normal(layer.blobs[1].shape)
    _set_params(layer, xp, w, b)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, naive_deconv(x, w, b, stride, pad, dilation, group),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("params,kernel,stride,pad,dilation", [
    ("kernel_size: 3 stride: 2 pad: 1", (3, 3), (2, 2), (1, 1), (1, 1)),
    ("kernel_h: 2 kernel_w: 3 dilation: 2", (2, 3), (1, 1), (0, 0), (2, 2)),
])
def test_im2col_forward_matches_naive(xp, params, kernel, stride, pad, dilation):
    x = _rng(3).standard_normal((2, 3, 6, 7))
    layer, bottom, top = build_layer(
        'type: "Im2col" convolution_param { %s }' % params, [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    np.testing.assert_allclose(y, naive_im2col(x, kernel, stride, pad, dilation))


def test_im2col_3d(xp):
    x = _rng(4).standard_normal((1, 2, 4, 3, 5))
    layer, bottom, top = build_layer(
        'type: "Im2col" convolution_param { kernel_size: 2 pad: 1 stride: 2 }', [x], xp=xp)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (1, 16, 3, 2, 3)
    np.testing.assert_allclose(y, naive_im2col(x, (2, 2, 2), (2, 2, 2), (1, 1, 1), (1, 1, 1)))


def test_convolution_axis2(xp):
    """axis 2: axes 0 and 1 are independent images, axis 2 the channels."""
    rng = _rng(5)
    x = rng.standard_normal((2, 3, 4, 5, 5))
    layer, bottom, top = build_layer(
        'type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 axis: 2 }',
        [x], xp=xp)
    w, b = rng.standard_normal((2, 4, 3, 3)), rng.standard_normal(2)
    _set_params(layer, xp, w, b)
    (y,) = run_forward(layer, bottom, top)
    assert y.shape == (2, 3, 2, 3, 3)
    ref = naive_conv(x.reshape(6, 4, 5, 5), w, b, (1, 1), (0, 0), (1, 1))
    np.testing.assert_allclose(y, ref.reshape(y.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["Convolution", "Deconvolution"])
def test_chunked_batch_equals_whole(xp, monkeypatch, kind):
    rng = _rng(6)
    x = rng.standard_normal((5, 2, 6, 6))
    dy = rng.standard_normal((5, 3, 6, 6))
    text = 'type: "%s" convolution_param { num_output: 3 kernel_size: 3 pad: 1 }' % kind
    results = []
    for budget in (1 << 30, 1):  # one chunk; one image per chunk
        monkeypatch.setitem(conv_mod._COL_BYTES, "numpy", budget)
        monkeypatch.setitem(conv_mod._COL_BYTES, "other", budget)
        layer, bottom, top = build_layer(text, [x], xp=xp)
        _set_params(layer, xp, np.linspace(-1, 1, 54).reshape(layer.blobs[0].shape), np.ones(3))
        run_forward(layer, bottom, top)
        top[0].diff[...] = xp.asarray(dy)
        layer.backward(top, [True], bottom)
        results.append([backend.to_numpy(a).copy() for a in
                        (top[0].data, bottom[0].diff, layer.blobs[0].diff)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# -- gradients ------------------------------------------------------------------
GRAD_CASES = [
    ('type: "Convolution" convolution_param { num_output: 3 kernel_size: 3 pad: 1 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 2, 4, 4)),
    ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 2 '
     'dilation: 2 group: 2 weight_filler { type: "gaussian" } }', (2, 4, 5, 5)),
    ('type: "Convolution" convolution_param { num_output: 2 kernel_h: 3 kernel_w: 2 pad_h: 1 '
     'stride_w: 2 stride_h: 1 bias_term: false weight_filler { type: "gaussian" } }',
     (1, 2, 5, 6)),
    ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 2 stride: 2 pad: 1 '
     'weight_filler { type: "gaussian" } }', (1, 2, 3, 3, 3)),
    ('type: "Deconvolution" convolution_param { num_output: 3 kernel_size: 3 stride: 2 pad: 1 '
     'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }', (2, 2, 3, 3)),
    ('type: "Deconvolution" convolution_param { num_output: 4 kernel_size: 2 stride: 2 '
     'dilation: 2 group: 2 weight_filler { type: "gaussian" } }', (1, 4, 3, 2)),
    ('type: "Im2col" convolution_param { kernel_size: 3 stride: 2 pad: 1 }', (2, 2, 4, 5)),
]


@pytest.mark.parametrize("text,shape", GRAD_CASES, ids=range(len(GRAD_CASES)))
def test_gradient(xp, text, shape):
    x = _rng(7).standard_normal(shape)
    layer, bottom, top = build_layer(text, [x], xp=xp)
    check_gradient(layer, bottom, top)


@pytest.mark.parametrize("params,shape", [
    ("num_output: 4 kernel_size: 3 pad: 1 dilation: 2 group: 2", (2, 4, 6, 5)),
    ("num_output: 2 kernel_h: 3 kernel_w: 2 pad_h: 2 pad_w: 1", (1, 3, 4, 5)),
    ("num_output: 2 kernel_size: 1 pad: 1", (1, 3, 3, 4)),  # pad' = -1
    ("num_output: 2 kernel_size: 2 pad: 1", (1, 2, 3, 4, 3)),
    ("num_output: 3 kernel_size: 4 pad: 1", (2, 2, 7)),
])
def test_stride1_backward_paths_agree(xp, monkeypatch, params, shape):
    """Stride 1 computes dx as a flipped-kernel correlation or by col2im."""
    rng = _rng(10)
    x = rng.standard_normal(shape)
    results = []
    for flipped in (True, False):
        monkeypatch.setattr(conv_mod.Convolution, "_flipped_backward", lambda self: flipped)
        layer, bottom, top = build_layer(
            'type: "Convolution" convolution_param { %s weight_filler { type: "gaussian" } }'
            % params, [x], xp=xp)
        _set_params(layer, xp, _rng(11).standard_normal(layer.blobs[0].shape))
        run_forward(layer, bottom, top)
        top[0].diff[...] = xp.asarray(_rng(12).standard_normal(top[0].shape))
        layer.backward(top, [True], bottom)
        results.append([backend.to_numpy(bottom[0].diff).copy(),
                        backend.to_numpy(layer.blobs[0].diff).copy()])
        if flipped:
            check_gradient(layer, bottom, top, check_params=False)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_gradient_two_bottoms(xp):
    rng = _rng(8)
    text = ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 pad: 1 '
            'weight_filler { type: "gaussian" } bias_filler { type: "gaussian" } }')
    layer, bottom, top = build_layer(text, [rng.standard_normal((1, 2, 4, 4)),
                                            rng.standard_normal((1, 2, 4, 4))], n_top=2, xp=xp)
    check_gradient(layer, bottom, top)


def test_param_diffs_accumulate_and_propagate_down(xp):
    rng = _rng(9)
    text = ('type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 '
            'weight_filler { type: "gaussian" } }')
    layer, bottom, top = build_layer(text, [rng.standard_normal((2, 2, 4, 4))], xp=xp)
    run_forward(layer, bottom, top)
    top[0].diff[...] = xp.asarray(rng.standard_normal(top[0].shape))
    layer.backward(top, [True], bottom)
    once = [backend.to_numpy(p.diff).copy() for p in layer.blobs]
    bottom[0].diff[...] = 7
    layer.param_propagate_down = [False, True]
    layer.backward(top, [False], bottom)
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[0].diff), once[0])
    np.testing.assert_allclose(backend.to_numpy(layer.blobs[1].diff), 2 * once[1])
    assert (backend.to_numpy(bottom[0].diff) == 7).all()


# -- shapes, fillers, preloaded blobs --------------------------------------------
@pytest.mark.parametrize("size,k,s,p,d,expected", [
    (5, 3, 1, 1, 1, 5), (8, 3, 2, 1, 1, 4), (7, 3, 2, 0, 1, 3), (9, 3, 1, 2, 2, 9),
    (6, 4, 3, 0, 1, 1), (2, 3, 2, 0, 1, 1), (1, 4, 1, 0, 1, -2),
])
def test_conv_out_size(size, k, s, p, d, expected):
    assert conv_out_size(size, k, s, p, d) == expected


def test_shapes_and_fillers():
    x = np.zeros((2, 4, 6, 5))
    layer, _, top = build_layer(
        'type: "Convolution" convolution_param { num_output: 6 kernel_size: 3 group: 2 '
        'stride: 2 weight_filler { type: "constant" value: 0.5 } '
        'bias_filler { type: "constant" value: -1 } }', [x])
    assert layer.blobs[0].shape == (6, 2, 3, 3) and layer.blobs[1].shape == (6,)
    assert (layer.blobs[0].data == 0.5).all() and (layer.blobs[1].data == -1).all()
    assert top[0].shape == (2, 6, 2, 2)
    layer, _, top = build_layer(
        'type: "Deconvolution" convolution_param { num_output: 6 kernel_size: 4 group: 2 '
        'stride: 2 pad: 1 bias_term: false }', [x])
    assert len(layer.blobs) == 1 and layer.blobs[0].shape == (4, 3, 4, 4)
    assert (layer.blobs[0].data == 0).all()  # Caffe's default filler: constant 0
    assert top[0].shape == (2, 6, 12, 10)
    layer, _, top = build_layer('type: "Im2col" convolution_param { kernel_size: 2 }', [x])
    assert top[0].shape == (2, 16, 5, 4)


def test_reshape_follows_new_input():
    layer, bottom, top = build_layer(
        'type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 }',
        [np.zeros((1, 3, 5, 5))])
    bottom[0].reshape(4, 3, 8, 6)
    run_forward(layer, bottom, top)
    assert top[0].shape == (4, 2, 6, 4)


def _conv_param_with_blobs(shapes):
    lp = layer_param('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                     'kernel_size: 3 }')
    for i, shape in enumerate(shapes):
        bp = lp.blobs.add()
        if len(shape) == 4 and shape[0] == 1 and i == 1:  # legacy num/channels/height/width
            bp.num, bp.channels, bp.height, bp.width = shape
        else:
            bp.shape.dim.extend(shape)
        bp.data.extend(np.arange(np.prod(shape), dtype=np.float32) + 1)
    return lp


def test_preloaded_blobs_kept_and_checked():
    lp = _conv_param_with_blobs([(2, 3, 3, 3), (1, 1, 1, 2)])
    layer = create_layer(lp)
    layer.setup([Blob((1, 3, 4, 4))], [Blob()])
    assert layer.blobs[1].shape == (2,)
    np.testing.assert_array_equal(layer.blobs[1].data, [1, 2])
    np.testing.assert_array_equal(layer.blobs[0].data.ravel()[:3], [1, 2, 3])
    layer = create_layer(_conv_param_with_blobs([(2, 3, 3, 2), (2,)]))
    with pytest.raises(LayerSetupError, match="Incorrect weight shape"):
        layer.setup([Blob((1, 3, 4, 4))], [Blob()])
    layer = create_layer(_conv_param_with_blobs([(2, 3, 3, 3)]))
    with pytest.raises(LayerSetupError, match="Incorrect number of weight blobs"):
        layer.setup([Blob((1, 3, 4, 4))], [Blob()])


# -- errors ---------------------------------------------------------------------
@pytest.mark.parametrize("params,shape,message", [
    ("num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3", (1, 2, 5, 5),
     "Either kernel_size or kernel_h/w should be specified; not both"),
    ("num_output: 2 kernel_h: 3 kernel_w: 3", (1, 2, 5, 5, 5),
     "kernel_h & kernel_w can only be used for 2D convolution"),
    ("num_output: 2 kernel_h: 3", (1, 2, 5, 5), "Filter dimensions must be nonzero"),
    ("num_output: 2", (1, 2, 5, 5), "kernel_size must be specified once"),
    ("num_output: 2 kernel_size: 3 kernel_size: 3 kernel_size: 3", (1, 2, 5, 5),
     r"kernel_size specified 3 times; 2 spatial dims"),
    ("num_output: 2 kernel_size: 3 stride: 0", (1, 2, 5, 5), "Stride dimensions must be"),
    ("num_output: 2 kernel_size: 3 stride: 1 stride_h: 2", (1, 2, 5, 5),
     "Either stride or stride_h/w should be specified; not both"),
    ("num_output: 2 kernel_size: 3 pad: 1 pad_w: 1", (1, 2, 5, 5),
     "Either pad or pad_h/w should be specified; not both"),
    ("num_output: 2 kernel_size: 3 dilation: 1 dilation: 1 dilation: 1", (1, 2, 5, 5),
     "dilation must be specified once"),
    ("num_output: 3 kernel_size: 3 group: 2", (1, 2, 5, 5),
     "Number of output should be multiples of group"),
    ("num_output: 2 kernel_size: 3 group: 2", (1, 3, 5, 5), "must divide the 3 input"),
    ("kernel_size: 3", (1, 2, 5, 5), "num_output must be > 0"),
    ("num_output: 2 kernel_size: 3 axis: 4", (1, 2, 5, 5), "axis 4 out of range"),
    ("num_output: 2 kernel_size: 7", (1, 2, 5, 5), "output size"),
])
def test_bad_parameters(params, shape, message):
    with pytest.raises(LayerSetupError, match=message):
        build_layer('name: "bad" type: "Convolution" convolution_param { %s }' % params,
                    [np.zeros(shape)])


def test_bottoms_must_agree():
    with pytest.raises(LayerSetupError, match="shape mismatch"):
        build_layer('type: "Convolution" convolution_param { num_output: 1 kernel_size: 1 }',
                    [np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 3, 4))], n_top=2)
    layer, bottom, top = build_layer(
        'type: "Convolution" convolution_param { num_output: 1 kernel_size: 1 }',
        [np.zeros((1, 2, 3, 3))])
    bottom[0].reshape(1, 3, 3, 3)
    with pytest.raises(LayerSetupError, match="Input size incompatible"):
        layer.reshape(bottom, top)
    with pytest.raises(LayerSetupError, match="needs as many tops as bottoms"):
        build_layer('type: "Convolution" convolution_param { num_output: 1 kernel_size: 1 }',
                    [np.zeros((1, 2, 3, 3))], n_top=2)


def test_im2col_needs_a_spatial_axis():
    with pytest.raises(LayerSetupError, match="spatial axis"):
        build_layer('type: "Im2col" convolution_param { kernel_size: 1 }', [np.zeros((2, 3))])
