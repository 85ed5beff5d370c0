"""LSTMUnit: one time step of the LSTM non-linearity, as BVLC Caffe computes it.

Bottoms: c_prev (1, N, D), gate input X (1, N, 4D), cont (1, N).
Tops: c (1, N, D), h (1, N, D).

X holds the pre-activations of the four gates in Caffe's order [i', f', o', g']
along the last axis:

    i = sigmoid(i'),  f = sigmoid(f'),  o = sigmoid(o'),  g = tanh(g')
    c = cont * f * c_prev + i * g          (the f term is exactly 0 where cont == 0)
    h = o * tanh(c)

Gradients, with dc~ = dc + dh * o * (1 - tanh(c)^2):

    dc_prev = dc~ * cont * f
    di' = dc~ * g * i (1 - i)          df' = dc~ * c_prev * cont * f (1 - f)
    do' = dh * tanh(c) * o (1 - o)     dg' = dc~ * i * (1 - g^2)

``cont`` (the sequence-continuation indicator) gets no gradient. For binary
cont this equals both of Caffe's implementations; for non-binary cont Caffe's
CPU code uses f~ (1 - f~) with f~ = cont * f in df', its GPU code (and this
one) the true derivative cont * f (1 - f).

``lstm_unit_forward`` / ``lstm_unit_backward`` work on (N, D) / (N, 4D) arrays
and are shared with the LSTM layer.
"""
from ..core import backend
from .base import Layer
from .registry import register


def sigmoid(xp, x):
    """1 / (1 + exp(-x)), written with tanh so that large |x| cannot overflow."""
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def lstm_unit_forward(xp, c_prev, gates, cont):
    """c_prev (N, D), gates (N, 4D) pre-activations, cont (N,).
    Returns c, h and the cache for ``lstm_unit_backward``."""
    d = c_prev.shape[-1]
    sig = sigmoid(xp, gates[:, :3 * d])
    i, f, o = sig[:, :d], sig[:, d:2 * d], sig[:, 2 * d:]
    g = xp.tanh(gates[:, 3 * d:])
    cont = cont.reshape(-1, 1)
    f_eff = xp.where(cont == 0, 0, cont * f).astype(c_prev.dtype, copy=False)
    c = f_eff * c_prev + i * g
    tanh_c = xp.tanh(c)
    h = o * tanh_c
    return c, h, (c_prev, i, f, o, g, cont, f_eff, tanh_c)


def lstm_unit_backward(xp, cache, dc, dh):
    """Gradients of c_prev (N, D) and of the gate pre-activations (N, 4D),
    given dc and dh (N, D); ``dc`` may be None (no gradient into c)."""
    c_prev, i, f, o, g, cont, f_eff, tanh_c = cache
    c_term = dh * o * (1 - tanh_c * tanh_c)
    if dc is not None:
        c_term = c_term + dc
    dgates = xp.concatenate([
        c_term * g * i * (1 - i),
        c_term * c_prev * cont * f * (1 - f),
        dh * tanh_c * o * (1 - o),
        c_term * i * (1 - g * g)], axis=1)
    return c_term * f_eff, dgates


@register("LSTMUnit")
class LSTMUnit(Layer):
    exact_num_bottom = 3
    exact_num_top = 2

    def allow_force_backward(self, bottom_index):
        return bottom_index != 2  # no gradient to the sequence indicators

    def reshape(self, bottom, top):
        c_prev, x, cont = bottom
        n = c_prev.shape[1] if c_prev.num_axes > 1 else -1
        for k, (blob, axes) in enumerate(((c_prev, 3), (x, 3), (cont, 2))):
            if blob.num_axes != axes or blob.shape[0] != 1 or blob.shape[1] != n:
                raise self.error(
                    "bottom %d must have %d axes (1, N%s) with N = %d from bottom 0 "
                    "(bottoms: c_prev (1, N, D), gates (1, N, 4D), cont (1, N)); got %s"
                    % (k, axes, ", ..." if axes == 3 else "", n, blob.shape))
        self.hidden_dim = c_prev.shape[2]
        if x.shape[2] != 4 * self.hidden_dim:
            raise self.error("bottom 1 (gates) must have 4 * D = %d values per item, got "
                             "shape %s" % (4 * self.hidden_dim, x.shape))
        top[0].reshape(c_prev.shape)
        top[1].reshape(c_prev.shape)

    def forward(self, bottom, top):
        xp = backend.get_array_module(bottom[0].data)
        n, d = bottom[0].shape[1], self.hidden_dim
        c, h, self._cache = lstm_unit_forward(
            xp, bottom[0].data.reshape(n, d), bottom[1].data.reshape(n, 4 * d),
            bottom[2].data.reshape(n))
        top[0].data = c.reshape(top[0].shape)
        top[1].data = h.reshape(top[1].shape)

    def backward(self, top, propagate_down, bottom):
        if not (propagate_down[0] or propagate_down[1]):
            return
        xp = backend.get_array_module(top[0].diff)
        n, d = bottom[0].shape[1], self.hidden_dim
        dc_prev, dgates = lstm_unit_backward(
            xp, self._cache, top[0].diff.reshape(n, d), top[1].diff.reshape(n, d))
        if propagate_down[0]:
            bottom[0].diff = dc_prev.reshape(bottom[0].shape)
        if propagate_down[1]:
            bottom[1].diff = dgates.reshape(bottom[1].shape)
