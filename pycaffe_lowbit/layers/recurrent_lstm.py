"""LSTM (Caffe's LSTMLayer): a Recurrent layer (see recurrent.py) unrolled over T steps.

    gate_input_t = W_hc (cont_t * h_{t-1}) + W_xc x_t + b_c [+ W_xc_static x_static]
    c_t, h_t = LSTMUnit(c_{t-1}, gate_input_t, cont_t)       (see lstm_unit.py)

with the gate pre-activations in Caffe's order [i, f, o, g] (4H values). Top 0 is
h (T, N, H); with expose_hidden, bottoms h_0, c_0 give the first state and tops
h_T, c_T the last. Blobs, in Caffe's order: W_xc (4H, K), b_c (4H,),
[W_xc_static (4H, K_static) with a static input], W_hc (4H, H), K = x.count(2).
Backward is back-propagation through time from the h diff.
"""
from .lstm_unit import lstm_unit_backward, lstm_unit_forward
from .recurrent import Recurrent, masked
from .registry import register


@register("LSTM")
class LSTM(Recurrent):
    state_names = ("h_0", "c_0")

    def param_layout(self):
        g = 4 * self.num_output
        layout = [("W_xc", (g, self.input_dim), "weight_filler"),
                  ("b_c", (g,), "bias_filler")]
        if self.static_input:
            layout.append(("W_xc_static", (g, self.static_dim), "weight_filler"))
        return layout + [("W_hc", (g, self.num_output), "weight_filler")]

    def run_forward(self, xp, x2, cont, xs2, state):
        w = self.weights()
        T, N, H = self.T, self.N, self.num_output
        wx = (xp.matmul(x2, w["W_xc"].T) + w["b_c"]).reshape(T, N, 4 * H)
        if xs2 is not None:
            wx = wx + xp.matmul(xs2, w["W_xc_static"].T)
        h, c = state
        hcs, hs, units = [], [], []
        for t in range(T):
            hc = masked(cont[t], h)
            gates = xp.matmul(hc, w["W_hc"].T) + wx[t]
            c, h, unit = lstm_unit_forward(xp, c, gates, cont[t])
            hcs.append(hc)
            hs.append(h)
            units.append(unit)
        self._cache = (cont, xp.stack(hcs).reshape(T * N, H), units)
        return xp.stack(hs), [h, c]

    def run_backward(self, xp, dout, need_x, need_static):
        w = self.weights()
        cont, hcs, units = self._cache
        T, N, H = self.T, self.N, self.num_output
        dgates = xp.empty((T, N, 4 * H), dout.dtype)
        dh_next, dc = 0, None   # the final states' diffs are not used, as in Caffe
        for t in range(T - 1, -1, -1):
            dc, dgates[t] = lstm_unit_backward(xp, units[t], dc, dout[t] + dh_next)
            dh_next = masked(cont[t], xp.matmul(dgates[t], w["W_hc"]))
        return self.input_backward(xp, dgates, hcs, "W_hc", "W_xc", "b_c", "W_xc_static",
                                   need_x, need_static)
