"""The integer form of every quantizer of a net, for the quantized ONNX exports
(``onnx_quant``): what QONNX's Quant / BipolarQuant and ONNX's
QuantizeLinear / DequantizeLinear state, computed from the layers themselves.

Weights, ``weight_code(layer)`` -> ``WeightCode`` or None (a float weight):
the effective weight Q of the layer (what its TEST forward uses) written as

    Q[n, ...] = ints[n, ...] * scale[n]        ints integers in [lo, hi]

    Binary* (BWN, HWGQ binary_*_param)  ints = s(W) in {-1, +1}, scale = a_n
        (mean |W_n| in float32, the fork's value; 1 without use_alpha): bipolar
    Ternary* (TWN, SQ-TWN)  ints = t in {-1, 0, +1}, scale = a_n (1 where a_n = 0
        and the row is all zeros): 2 bits, signed, narrow
    QNNConvolution / QNNInnerProduct  nb = 0: bipolar, scale 1; else ints =
        Q 2^e (e = nb - 1 + floor(log2(1 / max|W|))), scale 2^-e for every row:
        nb bits signed (nb + 1, narrow, when symmetric)
    WeightSearch*  W = v[argmax softmax(a / tau)] (the TEST forward's); a set {-a, a}: bipolar, scale a; else the
        coarsest power-of-two grid g holding every value, ints = v / g (int-k:
        g = 1, k bits; po2-2b: g = 1/2, 3 bits; po2-3b: g = 1/4, 5 bits); a set
        on no grid, or one that needs more than ``max_bits``: ValueError

SQ's stochastic partial quantization is a training device: the export takes
every row quantized (ratio 100), as the last SQ stage trains and ``bw`` deploys.

Activations, ``activation_code(layer)`` -> ``ActivationCode`` or None (float:
hard_tanh, leaky relu): the output is (k - zero_point) * scale for an integer
k in [0, count - 1] (``bipolar``: sign, y = +1 if x >= 0 else -1).

    HWGQ (Quant hwgq)  levels -negative_slope, c_1..c_K must be uniform (step s,
        relative 1e-5; "3ne" is, "2n" is not: ValueError naming the layer) with
        an integer zero point (so negative_slope 0: with -m s below c_1 = (1 - m) s
        > 0 there is none). The
        fork sends 0 < x <= t_1 to c_1 (its first threshold is 0, not s / 2), so
        the integer quantizer reads z = x > 0 ? clip(x, c_1, c_K) : -negative_slope,
        rounding half down (a tie takes the lower level, as in the fork).
    QNN hardtanh, nb >= 1  z = clip(x, -1, 1), s = 2^(1-nb), zero point 2^(nb-1),
        rounding half up: exactly round(hs(x) 2^nb) of ``quant.qnn``
    QNN relu  s = 2^(1-nb), zero point 0, k in [0, 2^(nb-1) - 1], half up
    Sign, QNN hardtanh nb = 0: bipolar
"""
import numpy as np

from ..core import backend


class ExportError(ValueError):
    """A quantizer the target format cannot state exactly; names the layer."""


class WeightCode:
    """Q = ints * scale (per row): see the module docstring. ``source`` is the
    float array a quantizer node reads (the latent W for a sign quantizer,
    else Q itself, which the node maps onto its own grid exactly)."""

    def __init__(self, ints, scale, bits, signed=True, narrow=False, bipolar=False,
                 source=None):
        self.ints = np.asarray(ints, np.float32)
        self.scale = np.asarray(scale, np.float32).reshape(-1)
        self.bits, self.signed, self.narrow, self.bipolar = int(bits), signed, narrow, bipolar
        self.source = self.value() if source is None else np.asarray(source, np.float32)

    def value(self):
        """Q (float32, the weight's shape)."""
        shape = (-1,) + (1,) * (self.ints.ndim - 1)
        return (self.ints * self.scale.reshape(shape)).astype(np.float32)

    def int_range(self):
        """(lo, hi): the integers the code declares (QONNX's min_int, max_int)."""
        if self.bipolar:
            return -1, 1
        if self.signed:
            half = 2 ** (self.bits - 1)
            return -half + (1 if self.narrow else 0), half - 1
        return 0, 2 ** self.bits - (2 if self.narrow else 1)


class ActivationCode:
    """y = (k - zero_point) * scale, k integer in [0, count - 1]; see the module
    docstring. ``clip`` (lo, hi) bounds x first; ``hwgq`` = (c_1, c_K, low)
    asks for the HWGQ pre-map; ``rounding`` is QONNX's rounding_mode."""

    def __init__(self, scale=1.0, zero_point=0, count=2, rounding="ROUND", clip=None,
                 hwgq=None, bipolar=False):
        self.scale, self.zero_point, self.count = float(np.float32(scale)), int(zero_point), count
        self.rounding, self.clip, self.hwgq, self.bipolar = rounding, clip, hwgq, bipolar

    @property
    def bits(self):
        return max(1, int(self.count - 1).bit_length())

    @property
    def signed_levels(self):
        """Whether some level is below 0."""
        return self.zero_point > 0


def _host(array):
    """A layer's array on the host (a GPU-mode net holds its blobs on the device)."""
    return backend.to_numpy(array)


def _rows(layer):
    w = _host(layer.blobs[0].data)
    return np.asarray(w).reshape(w.shape[0], -1)


def _binary(layer, q):
    rows = _rows(layer)
    alpha = np.asarray(q.scale(rows), np.float32)
    ints = np.where(rows + np.float32(0) >= 0, 1.0, -1.0).astype(np.float32)
    return WeightCode(ints.reshape(layer.blobs[0].shape), alpha, 1, bipolar=True,
                      source=np.asarray(_host(layer.blobs[0].data)))


def _ternary(layer, q):
    rows = _rows(layer)
    qv = np.asarray(q.forward(rows), np.float32)
    alpha = np.abs(qv).max(axis=1)
    scale = np.where(alpha > 0, alpha, np.float32(1)).astype(np.float32)
    ints = np.rint(qv / scale[:, None]) + np.float32(0)
    return WeightCode(ints.reshape(layer.blobs[0].shape), scale, 2, narrow=True)


def _qnn(layer, q):
    w = np.asarray(_host(layer.blobs[0].data))
    num = w.shape[0]
    if q.nb == 0:
        return WeightCode(np.where(w >= 0, 1.0, -1.0), np.ones(num), 1, bipolar=True, source=w)
    e = q.scale_exponent(w)
    if e is None:
        return WeightCode(np.zeros_like(w), np.ones(num), max(q.nb, 2))
    qv = np.asarray(q.forward(w), np.float32)
    ints = qv * np.float32(2.0 ** e)
    scale = np.full(num, 2.0 ** -e)
    if q.symmetric:
        return WeightCode(ints, scale, q.nb + 1, narrow=True)
    return WeightCode(ints, scale, max(q.nb, 2) if q.nb == 1 else q.nb)


def power_of_two_grid(values, max_bits):
    """(g, bits, narrow): the coarsest g = 2^j with every value / g an integer,
    and the signed bit width holding them; None when none fits ``max_bits``."""
    values = np.asarray(values, np.float64)
    for j in range(8, -16, -1):
        g = 2.0 ** j
        ints = values / g
        if not np.all(ints == np.round(ints)):
            continue
        lo, hi = ints.min(), ints.max()
        bits = max(2, int(max(-lo, hi + 1) - 1).bit_length() + 1)
        narrow = lo > -2 ** (bits - 1)
        if bits <= max_bits:
            return g, bits, bool(narrow)
        return None
    return None


def _searched(layer, max_bits):
    values = np.asarray(layer.search.values, np.float64)
    # the TEST forward's weight: v[argmax softmax(a / tau)] (argmax a itself may
    # differ where near-equal logits round to equal probabilities)
    w, _ = layer.search.forward(_host(layer.blobs[0].data), layer.temperature(), hard=True, noise=False)
    w = np.asarray(_host(w), np.float32)
    num = w.shape[0]
    if values.size == 2 and values[0] == -values[1]:
        a = float(abs(values[0]))
        return WeightCode(np.where(w >= 0, 1.0, -1.0), np.full(num, a), 1, bipolar=True,
                          source=w)
    grid = power_of_two_grid(values, max_bits)
    if grid is None:
        raise ExportError(
            "layer '%s' (%s): its value set {%s} lies on no power-of-two grid of at most %d "
            "bits, so no integer quantizer states it exactly (export without quantization)"
            % (layer.name, layer.type, ", ".join("%g" % v for v in sorted(values)), max_bits))
    g, bits, narrow = grid
    return WeightCode(w / np.float32(g), np.full(num, g), bits, narrow=narrow)


def weight_code(layer, max_bits=8):
    """The ``WeightCode`` of a quantized Conv / InnerProduct layer, or None."""
    if layer.type.startswith("WeightSearch"):
        return _searched(layer, max_bits)
    q = getattr(layer, "weight_quantizer", None)
    q = getattr(q, "inner", q)          # SQ's StochasticSelection: ratio 100
    if q is None:
        return None
    kind = type(q).__name__
    if kind == "BinaryWeights":
        return _binary(layer, q)
    if kind == "TernaryWeights":
        return _ternary(layer, q)
    if kind == "QNNWeights":
        return _qnn(layer, q)
    raise ExportError("layer '%s' (%s): no integer form for the weight quantizer %s"
                      % (layer.name, layer.type, kind))


def _hwgq(layer, value):
    c = np.asarray(value.centers, np.float64)
    low = -float(value.negative_slope)
    levels = np.concatenate([[low], c]) + 0.0      # -0.0 prints as 0
    steps = np.diff(levels)
    if not np.allclose(steps, steps.mean(), rtol=1e-5, atol=0):
        raise ExportError(
            "layer '%s' (Quant hwgq): its levels %s are not uniform, so an integer quantizer "
            "cannot state them (the uniform \"3ne\" centers are; export without quantization)"
            % (layer.name, ", ".join("%g" % v for v in levels)))
    s = (levels[-1] - levels[0]) / (levels.size - 1)
    zp = -low / s
    if abs(zp - round(zp)) > 1e-4:
        raise ExportError("layer '%s' (Quant hwgq): negative_slope %g is not a whole number of "
                          "level steps (%g), so the levels have no integer zero point"
                          % (layer.name, -low, s))
    return ActivationCode(s, round(zp), levels.size, rounding="HALF_DOWN",
                          hwgq=(float(c[0]), float(c[-1]), low))


def _qnn_activation(q):
    if q.nonlinearity == "hardtanh" and q.nb == 0:
        return ActivationCode(bipolar=True)
    s = 2.0 ** (1 - q.nb)
    if q.nonlinearity == "hardtanh":
        return ActivationCode(s, 2 ** (q.nb - 1), 2 ** q.nb + 1, rounding="HALF_UP",
                              clip=(-1.0, 1.0))
    return ActivationCode(s, 0, 2 ** (q.nb - 1), rounding="HALF_UP",
                          clip=(0.0, 1.0 - 2.0 ** (1 - q.nb)))


def activation_code(layer):
    """The ``ActivationCode`` of a Quant / QNNActivation layer, or None (float)."""
    q = layer.quantizer
    if layer.type == "QNNActivation":
        return _qnn_activation(q)
    value = q.value
    kind = type(value).__name__
    if kind == "Sign":
        return ActivationCode(bipolar=True)
    if kind == "HWGQ":
        return _hwgq(layer, value)
    return None
