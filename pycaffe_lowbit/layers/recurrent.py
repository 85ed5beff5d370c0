"""Recurrent layers (Caffe's RecurrentLayer): the shared base, and RNN (LSTM is in
recurrent_lstm.py).

Bottoms: x (T, N, ...), cont (T, N), optionally x_static (N, ...), then, with
``expose_hidden``, the initial recurrent state(s) (1, N, H) (RNN: h_0; LSTM:
h_0, c_0). Tops: the sequence output (T, N, H), then, with ``expose_hidden``,
the final state(s) (1, N, H) (RNN: h_T; LSTM: h_T, c_T). H = num_output.

``cont[t, n]`` is 0 where a new sequence starts in stream n at time t: the
previous hidden state is multiplied by it before it enters step t.

Caffe computes these layers by unrolling them into an internal net of
InnerProduct / Eltwise / Scale / LSTMUnit / TanH layers that share weights
across time; its learnable params, in the unrolled net's order, are this
layer's blobs. Here the same arithmetic runs as a time loop over T (matrix
products over all N streams at once); the x-to-hidden products for all T steps
are one matrix product, as Caffe's single InnerProduct with axis 2.

Caffe's state semantics, kept here:
  * without ``expose_hidden`` the initial state of a forward pass is the final
    state of the previous one (zeros before the first); ``cont`` = 0 at t = 0
    flushes it. ``reset()`` zeroes it (Caffe's RecurrentLayer::Reset).
  * with ``expose_hidden`` the initial state comes from the extra bottoms and
    the final state goes to the extra tops.
  * backward propagates from the sequence output only: diffs on the final-state
    tops are ignored, and the initial state (bottom or carried) gets no gradient
    (Caffe shares only the data of those bottoms with its unrolled net, so their
    diffs stay 0). ``cont`` gets no gradient.
  * the number of time steps T is fixed at setup; N may change.
"""
import logging

from ..core import backend
from .base import Layer
from .registry import register

log = logging.getLogger("pycaffe_lowbit")


class Recurrent(Layer):
    """Base: subclasses set ``state_names``, ``param_layout`` and implement
    ``run_forward(xp, x2, cont, xs2, state) -> (output, final_state)`` and
    ``run_backward(xp, dout) -> (dx2, dxs2)`` (accumulating param diffs)."""

    state_names = ()   # recurrent inputs, in Caffe's bottom / top order
    gate_factor = 1    # LSTM: 4 gates per hidden unit

    def __init__(self, param, phase=None, dtype=None):
        super().__init__(param, phase=phase, dtype=dtype)
        rp = param.recurrent_param
        self.expose_hidden = rp.expose_hidden
        self.debug_info = rp.debug_info
        exposed = len(self.state_names) if self.expose_hidden else 0
        self.min_num_bottom = 2 + exposed
        self.max_num_bottom = 3 + exposed
        self.exact_num_top = 1 + exposed

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1  # no gradient to the sequence indicators

    # -- setup -------------------------------------------------------------
    def layer_setup(self, bottom, top):
        rp = self.param.recurrent_param
        self.num_output = rp.num_output
        if self.num_output <= 0:
            raise self.error("recurrent_param.num_output must be positive (got %d)"
                             % self.num_output)
        self._check_inputs(bottom)
        self.T = bottom[0].shape[0]
        exposed = len(self.state_names) if self.expose_hidden else 0
        self.static_input = len(bottom) > 2 + exposed
        self.input_dim = bottom[0].count_range(2)
        self.static_dim = bottom[2].count_range(1) if self.static_input else 0
        layout = self.param_layout()
        shapes = [shape for _, shape, _ in layout]
        self.init_params(shapes, [getattr(rp, filler) for _, _, filler in layout],
                         names=[name for name, _, _ in layout])
        self._state = None
        self._cache = None

    def param_layout(self):
        """[(name, shape, filler field)] in Caffe's blob order."""
        raise NotImplementedError

    def _check_inputs(self, bottom):
        x, cont = bottom[0], bottom[1]
        if x.num_axes < 2:
            raise self.error("bottom 0 (x) must have at least 2 axes -- (#timesteps, "
                             "#streams, ...); got shape %s" % (x.shape,))
        if cont.num_axes != 2 or cont.shape != x.shape[:2]:
            raise self.error("bottom 1 (cont) must have exactly 2 axes -- (#timesteps, "
                             "#streams) = %s; got shape %s" % (x.shape[:2], cont.shape))
        exposed = len(self.state_names) if self.expose_hidden else 0
        if len(bottom) > 2 + exposed:
            xs = bottom[2]
            if xs.num_axes < 1 or xs.shape[0] != x.shape[1]:
                raise self.error("bottom 2 (x_static) must have shape (N, ...) with "
                                 "N = %d streams; got shape %s" % (x.shape[1], xs.shape))

    def reshape(self, bottom, top):
        self._check_inputs(bottom)
        if bottom[0].shape[0] != self.T:
            raise self.error("input number of timesteps changed: %d at setup, now %d"
                             % (self.T, bottom[0].shape[0]))
        if bottom[0].count_range(2) != self.input_dim:
            raise self.error("bottom 0 (x) has %d values per item, expected %d"
                             % (bottom[0].count_range(2), self.input_dim))
        if self.static_input and bottom[2].count_range(1) != self.static_dim:
            raise self.error("bottom 2 (x_static) has %d values per item, expected %d"
                             % (bottom[2].count_range(1), self.static_dim))
        self.N = bottom[0].shape[1]
        state_shape = (1, self.N, self.num_output)
        if self.expose_hidden:
            first = len(bottom) - len(self.state_names)
            for j, name in enumerate(self.state_names):
                if bottom[first + j].shape != state_shape:
                    raise self.error("bottom %d (%s) shape must match hidden state input "
                                     "shape: %s; got %s" % (first + j, name, state_shape,
                                                            bottom[first + j].shape))
        top[0].reshape((self.T, self.N, self.num_output))
        for t in top[1:]:
            t.reshape(state_shape)

    # -- passes -------------------------------------------------------------
    def reset(self):
        """Zero the carried state (Caffe's RecurrentLayer::Reset)."""
        self._state = None

    def _initial_state(self, xp, bottom, dtype):
        if self.expose_hidden:
            first = len(bottom) - len(self.state_names)
            return [b.data.reshape(self.N, self.num_output) for b in bottom[first:]]
        state = self._state
        if state is None or state[0].shape != (self.N, self.num_output) \
                or backend.get_array_module(state[0]) is not xp:
            state = [xp.zeros((self.N, self.num_output), dtype) for _ in self.state_names]
        return state

    def forward(self, bottom, top):
        xp = backend.get_array_module(bottom[0].data)
        x2 = bottom[0].data.reshape(self.T * self.N, self.input_dim)
        cont = bottom[1].data
        xs2 = bottom[2].data.reshape(self.N, self.static_dim) if self.static_input else None
        state = self._initial_state(xp, bottom, bottom[0].dtype)
        out, final = self.run_forward(xp, x2, cont, xs2, state)
        top[0].data = out.reshape(top[0].shape)
        if self.debug_info:
            self._log_steps("Forward", "h data", top[0].data)
        if self.expose_hidden:
            for t, s in zip(top[1:], final):
                t.data = s.reshape(t.shape)
        else:
            self._state = final
        self._inputs = (x2, xs2)

    def backward(self, top, propagate_down, bottom):
        xp = backend.get_array_module(top[0].diff)
        dout = top[0].diff.reshape(self.T, self.N, self.num_output)
        dx2, dxs2 = self.run_backward(xp, dout, propagate_down[0],
                                      self.static_input and propagate_down[2])
        if propagate_down[0]:
            bottom[0].diff = dx2.reshape(bottom[0].shape)
            if self.debug_info:
                self._log_steps("Backward", "x diff", bottom[0].diff)
        if self.static_input and propagate_down[2]:
            bottom[2].diff = dxs2.reshape(bottom[2].shape)
        if self.expose_hidden:   # Caffe gives the initial state no gradient
            first = len(bottom) - len(self.state_names)
            for k in range(first, len(bottom)):
                if propagate_down[k]:
                    bottom[k].diff = xp.zeros(bottom[k].shape, bottom[k].dtype)

    def _log_steps(self, stage, what, array):
        """recurrent_param.debug_info: Caffe's debug lines, one per time step
        (mean absolute value), as its unrolled net prints them."""
        per_step = abs(array.reshape(self.T, -1)).mean(axis=1)
        for t in range(self.T):
            log.info("    [%s] Layer %s, time step %d, %s: %g", stage, self.name, t,
                     what, float(per_step[t]))

    # -- helpers for subclasses -------------------------------------------------
    def weights(self):
        """The param arrays by Caffe name (W_xh, b_h, ... / W_xc, b_c, ...)."""
        return {name: blob.data for (name, _, _), blob in zip(self.param_layout(), self.blobs)}

    def accumulate(self, name, grad):
        """Add ``grad`` to the diff of param ``name`` (if it propagates down)."""
        for k, (pname, _, _) in enumerate(self.param_layout()):
            if pname == name:
                if self.param_propagate_down[k]:
                    self.blobs[k].diff += grad
                return
        raise KeyError(name)

    def input_backward(self, xp, dpre, hcs, w_rec, w_x, b_x, w_static, need_x, need_static):
        """Param and input gradients from the pre-activation diffs dpre (T, N, G)
        of all steps: the recurrent weight (inputs hcs), the x-to-hidden weight and
        bias, and the static-input weight. Returns (dx2, dxs2)."""
        w = self.weights()
        dpre2 = dpre.reshape(-1, dpre.shape[-1])
        self.accumulate(w_rec, xp.matmul(dpre2.T, hcs))
        x2, xs2 = self._inputs
        self.accumulate(w_x, xp.matmul(dpre2.T, x2))
        self.accumulate(b_x, dpre2.sum(axis=0))
        dx2 = xp.matmul(dpre2, w[w_x]) if need_x else None
        dxs2 = None
        if self.static_input:
            dstatic = dpre.sum(axis=0)
            self.accumulate(w_static, xp.matmul(dstatic.T, xs2))
            dxs2 = xp.matmul(dstatic, w[w_static]) if need_static else None
        return dx2, dxs2


def masked(cont_t, h):
    """cont_t (N,) times h (N, H): Caffe's h_conted_{t-1} = cont_t * h_{t-1}."""
    return cont_t.reshape(-1, 1) * h


@register("RNN")
class RNN(Recurrent):
    """Caffe's RNN (tanh), unrolled over T steps:

        h_t = tanh(W_hh (cont_t * h_{t-1}) + W_xh x_t + b_h [+ W_xh_static x_static])
        o_t = tanh(W_ho h_t + b_o)

    Top 0 is o (T, N, H); with expose_hidden top 1 is h_T and bottom h_0 gives the
    first state. Blobs, in Caffe's order: W_xh (H, K), b_h (H,), [W_xh_static
    (H, K_static) with a static input], W_hh (H, H), W_ho (H, H), b_o (H,), with
    K = x.count(2). Backward is back-propagation through time from the o diff.
    """
    state_names = ("h_0",)

    def param_layout(self):
        h = self.num_output
        layout = [("W_xh", (h, self.input_dim), "weight_filler"),
                  ("b_h", (h,), "bias_filler")]
        if self.static_input:
            layout.append(("W_xh_static", (h, self.static_dim), "weight_filler"))
        return layout + [("W_hh", (h, h), "weight_filler"),
                         ("W_ho", (h, h), "weight_filler"),
                         ("b_o", (h,), "bias_filler")]

    def run_forward(self, xp, x2, cont, xs2, state):
        w = self.weights()
        T, N, H = self.T, self.N, self.num_output
        wx = (xp.matmul(x2, w["W_xh"].T) + w["b_h"]).reshape(T, N, H)
        if xs2 is not None:
            wx = wx + xp.matmul(xs2, w["W_xh_static"].T)
        h = state[0]
        hcs, hs = [], []
        for t in range(T):
            hc = masked(cont[t], h)
            h = xp.tanh(xp.matmul(hc, w["W_hh"].T) + wx[t])
            hcs.append(hc)
            hs.append(h)
        hs = xp.stack(hs).reshape(T * N, H)
        o = xp.tanh(xp.matmul(hs, w["W_ho"].T) + w["b_o"])
        self._cache = (cont, xp.stack(hcs).reshape(T * N, H), hs, o)
        return o, [h]

    def run_backward(self, xp, dout, need_x, need_static):
        w = self.weights()
        cont, hcs, hs, o = self._cache
        T, N, H = self.T, self.N, self.num_output
        dpo = dout.reshape(T * N, H) * (1 - o * o)
        self.accumulate("W_ho", xp.matmul(dpo.T, hs))
        self.accumulate("b_o", dpo.sum(axis=0))
        dh_o = xp.matmul(dpo, w["W_ho"]).reshape(T, N, H)
        h3 = hs.reshape(T, N, H)
        dpre = xp.empty((T, N, H), dout.dtype)
        dnext = 0
        for t in range(T - 1, -1, -1):
            dpre[t] = (dh_o[t] + dnext) * (1 - h3[t] * h3[t])
            dnext = masked(cont[t], xp.matmul(dpre[t], w["W_hh"]))
        return self.input_backward(xp, dpre, hcs, "W_hh", "W_xh", "b_h", "W_xh_static",
                                   need_x, need_static)
