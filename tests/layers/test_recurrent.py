"""RNN and LSTM: forward against a plain time loop, BPTT gradients (params included),
static input, expose_hidden, the carried state, blob layout and errors.
Caffe's own numbers: tests/golden/test_golden_layers.py (lstm, rnn, lstm_static)."""
import numpy as np
import pytest

import pycaffe_lowbit as caffe
from support.helpers import build_layer, check_gradient, layer_param, make_blobs, run_forward
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.formats.blobproto import blob_to_proto
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers import LayerSetupError, create_layer

FILL = 'weight_filler { type: "uniform" min: -0.5 max: 0.5 } ' \
       'bias_filler { type: "uniform" min: -0.5 max: 0.5 }'
CONT = np.array([[0, 0], [1, 1], [1, 0]], np.float64)   # T=3, N=2, restart at t=2, n=1


def _text(kind, h=3, extra=""):
    return 'name: "r" type: "%s" recurrent_param { num_output: %d %s %s }' % (kind, h, FILL, extra)


def _x(shape=(3, 2, 2), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _params(layer):
    return [backend.to_numpy(b.data) for b in layer.blobs]


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _rnn_ref(params, x, cont, xs=None, h=None):
    w_xh, b_h = params[:2]
    rest = params[2:]
    w_s = rest.pop(0) if xs is not None else None
    w_hh, w_ho, b_o = rest
    T, N = cont.shape
    h = np.zeros((N, w_hh.shape[0])) if h is None else h
    out = []
    for t in range(T):
        pre = (cont[t][:, None] * h) @ w_hh.T + x[t].reshape(N, -1) @ w_xh.T + b_h
        if xs is not None:
            pre = pre + xs.reshape(N, -1) @ w_s.T
        h = np.tanh(pre)
        out.append(np.tanh(h @ w_ho.T + b_o))
    return np.stack(out), h


def _lstm_ref(params, x, cont, xs=None, h=None, c=None):
    w_xc, b_c = params[:2]
    w_s = params[2] if xs is not None else None
    w_hc = params[-1]
    T, N = cont.shape
    H = w_hc.shape[1]
    h = np.zeros((N, H)) if h is None else h
    c = np.zeros((N, H)) if c is None else c
    out = []
    for t in range(T):
        gates = (cont[t][:, None] * h) @ w_hc.T + x[t].reshape(N, -1) @ w_xc.T + b_c
        if xs is not None:
            gates = gates + xs.reshape(N, -1) @ w_s.T
        i, f, o = _sig(gates[:, :H]), _sig(gates[:, H:2 * H]), _sig(gates[:, 2 * H:3 * H])
        g = np.tanh(gates[:, 3 * H:])
        c = cont[t][:, None] * f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out), h, c


REFS = {"RNN": _rnn_ref, "LSTM": _lstm_ref}


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("static", [False, True])
def test_forward_matches_time_loop(xp, kind, static):
    x = _x((3, 2, 2, 2))                       # K = x.count(2) = 4
    bottoms = [x, CONT] + ([_x((2, 3), seed=5)] if static else [])
    layer, bottom, top = build_layer(_text(kind), bottoms, xp=xp)
    out, = run_forward(layer, bottom, top)
    ref = REFS[kind](_params(layer), x, CONT, bottoms[2] if static else None)[0]
    assert out.shape == (3, 2, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind,shapes", [
    ("RNN", [(3, 2), (3,), (3, 3), (3, 3), (3,)]),
    ("LSTM", [(12, 2), (12,), (12, 3)]),
])
def test_blob_layout(kind, shapes):
    layer, _, _ = build_layer(_text(kind), [_x(), CONT])
    assert [b.shape for b in layer.blobs] == shapes
    layer, _, _ = build_layer(_text(kind), [_x(), CONT, _x((2, 5))])
    static = [(shapes[0][0], 5)]
    assert [b.shape for b in layer.blobs] == shapes[:2] + static + shapes[2:]


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("static", [False, True])
def test_gradient(xp, kind, static):
    bottoms = [_x(seed=1), CONT] + ([_x((2, 2), seed=2)] if static else [])
    layer, bottom, top = build_layer(_text(kind), bottoms, xp=xp)
    check_gradient(layer, bottom, top, check_bottom=[0, 2] if static else [0])


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_gradient_expose_hidden(xp, kind):
    n_state = 1 if kind == "RNN" else 2
    rng = np.random.default_rng(3)
    cont = np.ones((3, 2))                     # the initial state enters the output
    states = [rng.standard_normal((1, 2, 3)) for _ in range(n_state)]
    layer, bottom, top = build_layer(_text(kind, extra="expose_hidden: true"),
                                     [_x(seed=4), cont] + states, n_top=1 + n_state, xp=xp)
    # Caffe back-propagates from the sequence output only: weigh the final states by 0.
    weights = [rng.standard_normal((3, 2, 3))] + [np.zeros((1, 2, 3))] * n_state
    check_gradient(layer, bottom, top, check_bottom=[0], top_weights=weights)
    layer.backward(top, [True, False] + [True] * n_state, bottom)
    for b in bottom[2:]:                       # no gradient to the initial state (Caffe)
        assert float(abs(backend.to_numpy(b.diff)).max()) == 0


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_expose_hidden_tops_and_initial_state(xp, kind):
    n_state = 1 if kind == "RNN" else 2
    rng = np.random.default_rng(6)
    x, cont = _x(seed=7), np.ones((3, 2))
    states = [rng.standard_normal((1, 2, 3)) for _ in range(n_state)]
    layer, bottom, top = build_layer(_text(kind, extra="expose_hidden: true"),
                                     [x, cont] + states, n_top=1 + n_state, xp=xp)
    outs = run_forward(layer, bottom, top)
    ref = REFS[kind](_params(layer), x, cont, None, *[s[0] for s in states])
    np.testing.assert_allclose(outs[0], ref[0], rtol=1e-12, atol=1e-14)
    for got, want in zip(outs[1:], ref[1:]):       # h_T (and c_T)
        assert got.shape == (1, 2, 3)
        np.testing.assert_allclose(got[0], want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_state_carries_over_between_forwards(xp, kind):
    """Without expose_hidden, h_0 (c_0) of a pass is h_T (c_T) of the previous one."""
    x1, x2, cont = _x(seed=8), _x(seed=9), np.ones((3, 2))
    layer, bottom, top = build_layer(_text(kind), [x1, cont], xp=xp)
    params = _params(layer)
    run_forward(layer, bottom, top)
    bottom[0].data[...] = xp.asarray(x2)
    second, = run_forward(layer, bottom, top)
    first = REFS[kind](params, x1, cont)
    ref = REFS[kind](params, x2, cont, None, *first[1:])[0]
    np.testing.assert_allclose(second, ref, rtol=1e-12, atol=1e-14)
    layer.reset()
    np.testing.assert_allclose(run_forward(layer, bottom, top)[0],
                               REFS[kind](params, x2, cont)[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
def test_param_diffs_accumulate_and_cont_has_no_gradient(xp, kind):
    layer, bottom, top = build_layer(_text(kind), [_x(seed=10), CONT], xp=xp)
    assert layer.allow_force_backward(0) and not layer.allow_force_backward(1)
    run_forward(layer, bottom, top)
    top[0].diff[...] = 1
    layer.backward(top, [True, False], bottom)
    once = [backend.to_numpy(b.diff).copy() for b in layer.blobs]
    layer.backward(top, [True, False], bottom)
    for blob, d in zip(layer.blobs, once):
        np.testing.assert_allclose(backend.to_numpy(blob.diff), 2 * d, rtol=1e-12)
    layer.param_propagate_down = [False] * len(layer.blobs)
    layer.backward(top, [True, False], bottom)
    for blob, d in zip(layer.blobs, once):
        np.testing.assert_allclose(backend.to_numpy(blob.diff), 2 * d, rtol=1e-12)


def test_new_batch_size_is_accepted():
    layer, bottom, top = build_layer(_text("LSTM"), [_x(), CONT])
    bottom[0].reshape((3, 4, 2))
    bottom[1].reshape((3, 4))
    out, = run_forward(layer, bottom, top)
    assert out.shape == (3, 4, 3)


@pytest.mark.parametrize("kind", ["RNN", "LSTM"])
@pytest.mark.parametrize("extra,bottoms,n_top,match", [
    ("", lambda: [_x(), np.zeros((3, 3))], 1, "bottom 1 \\(cont\\) must have exactly 2 axes"),
    ("", lambda: [_x(), np.zeros((3, 2, 1))], 1, "bottom 1 \\(cont\\)"),
    ("", lambda: [np.zeros(3), np.zeros(3)], 1, "at least 2 axes"),
    ("", lambda: [_x(), CONT, np.zeros((3, 4))], 1, "x_static"),
    ("", lambda: [_x(), CONT], 2, "produces 1 top"),
    ("expose_hidden: true", lambda: [_x(), CONT], 1, "at least"),
    ("expose_hidden: true", lambda: [_x(), CONT] + [np.zeros((1, 2, 4))] * 2, 3,
     "shape must match hidden state input shape"),
])
def test_bad_inputs(kind, extra, bottoms, n_top, match):
    n_state = 1 if kind == "RNN" else 2
    args = bottoms()
    if "expose_hidden" in extra and len(args) > 2:
        args = args[:2 + n_state]
        n_top = 1 + n_state
    with pytest.raises(LayerSetupError, match=match):
        build_layer(_text(kind, extra=extra), args, n_top=n_top)


def test_num_output_must_be_positive():
    with pytest.raises(LayerSetupError, match="num_output must be positive"):
        build_layer('name: "r" type: "LSTM"', [_x(), CONT])


def test_timesteps_are_fixed_at_setup():
    layer, bottom, top = build_layer(_text("RNN"), [_x(), CONT])
    bottom[0].reshape((4, 2, 2))
    bottom[1].reshape((4, 2))
    with pytest.raises(LayerSetupError, match="number of timesteps changed"):
        run_forward(layer, bottom, top)


NET = """
force_backward: true
layer { name: "in" type: "Input" top: "x" top: "cont"
  input_param { shape { dim: 3 dim: 2 dim: 2 } shape { dim: 3 dim: 2 } } }
layer { name: "a" type: "LSTM" bottom: "x" bottom: "cont" top: "ha"
  param { name: "W_xc" } param { name: "b_c" } param { name: "W_hc" }
  recurrent_param { num_output: 3 %s } }
layer { name: "b" type: "LSTM" bottom: "x" bottom: "cont" top: "hb"
  param { name: "W_xc" } param { name: "b_c" } param { name: "W_hc" }
  recurrent_param { num_output: 3 } }
""" % FILL


def test_in_a_net_shared_and_reloaded_weights():
    net = caffe.Net(parse_net_text(NET), caffe.TEST)
    x = _x(seed=11)
    net.blobs["x"].data[...] = x
    net.blobs["cont"].data[...] = CONT
    net.forward()
    params = [p.data.copy() for p in net.params["a"]]
    ref = _lstm_ref(params, x, CONT)[0]
    np.testing.assert_allclose(net.blobs["ha"].data, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(net.blobs["hb"].data, net.blobs["ha"].data)
    # Weights stored in the LayerParameter (a caffemodel) are the ones used.
    again = caffe.Net(net.to_proto(), caffe.TEST)
    again.blobs["x"].data[...] = x
    again.blobs["cont"].data[...] = CONT
    again.forward()
    np.testing.assert_array_equal(again.blobs["ha"].data, net.blobs["ha"].data)


def test_preloaded_blob_shapes_are_checked():
    param = layer_param(_text("LSTM"))
    for shape in [(12, 2), (12,), (12, 4)]:        # W_hc should be (12, 3)
        param.blobs.append(blob_to_proto(Blob(shape)))
    layer = create_layer(param)
    with pytest.raises(LayerSetupError, match="W_hc shape"):
        layer.setup(make_blobs([_x(), CONT]), [Blob(())])
