"""Run a packed model (``pack.save_packed``): a Net whose quantized layers
compute with bits.

Each packed Convolution / InnerProduct picks its path from its bottom:

- the bottom comes from a Quant layer (``sign`` or ``hwgq``), directly or
  through level-preserving layers (MAX Pooling, Split, Flatten, Reshape):
  the values are coded by level (``ActivationCoding``), im2col'ed as uint8
  level indices (padding = index 0), split into bit planes, packed along k
  and multiplied by popcount: xnor for sign x binary, bit-serial planes for
  multi-bit activations (``packed_ops``). On the CPU with Numba (not
  LOWBIT_NUMBA=0, not under ``kernels.emulate()``), one-group 2-D
  convolutions and inner products run the compiled kernels instead
  (``packed_cpu``: packing, popcount GEMM and epilogue of ``cpu.popcount``),
  bit-equal to ``packed_ops``;
- any other bottom (the image, a full-precision layer's output): float, with
  the weights alpha * s unpacked once at load.

A BatchNorm whose output only a sign / hwgq Quant reads is folded into that
Quant's thresholds (``fold.batchnorm_thresholds``, exact bit for bit): the
BatchNorm is skipped and the Quant compares its raw input with per-channel
thresholds. Full-precision layers run as ordinary layers with their float blobs. A layer
type outside ``SUPPORTED`` (losses, data layers, Python layers...) is refused
when the model is loaded, with an error naming the layer.
"""
import numpy as np

from ..core import backend
from ..layers._im2col import im2col
from ..core.net import Net, TEST
from . import packed_cpu, packed_ops
from .fold import batchnorm_thresholds

SUPPORTED = frozenset((
    "Input", "Convolution", "InnerProduct", "Pooling", "BatchNorm", "Scale", "Bias",
    "ReLU", "PReLU", "Sigmoid", "TanH", "Quant", "Softmax", "Eltwise", "Concat", "Flatten",
    "Reshape", "Split", "Dropout", "LRN", "Power", "AbsVal"))
# Layers whose output takes only values of their input (so a level code survives).
_LEVEL_PRESERVING = ("Split", "Flatten", "Reshape", "Dropout")


class PackedRuntimeError(ValueError):
    """The packed runtime cannot run a layer; the message names it."""


def _quant_levels(lp):
    """The output levels of a Quant layer, or None when it has none (hard_tanh, relu)."""
    q = lp.quant_param
    if q.forward_func == "sign":
        return [-1.0, 1.0]
    if q.forward_func == "hwgq" and len(q.centers):
        return [-float(q.negative_slope)] + [float(c) for c in q.centers]
    return None


def _producer_levels(param, layer_index, blob):
    """Levels of ``blob`` as read by layer ``layer_index``: follow the producer
    chain back through level-preserving layers to a Quant layer."""
    for i in range(layer_index - 1, -1, -1):
        lp = param.layer[i]
        if blob not in lp.top:
            continue
        if lp.type == "Quant":
            return _quant_levels(lp)
        preserving = lp.type in _LEVEL_PRESERVING or (
            lp.type == "Pooling" and lp.pooling_param.pool == lp.pooling_param.MAX)
        if preserving and len(lp.bottom) == 1 and list(lp.bottom) != list(lp.top):
            return _producer_levels(param, i, lp.bottom[0])
        return None
    return None


class _PackedLinear:
    """Replaces a plain Convolution / InnerProduct layer of the Net: shapes
    and geometry from ``inner`` (already set up), products from the bits."""

    def __init__(self, inner, weights, coding):
        self.inner = inner
        self.weights = weights
        self.coding = coding
        self.name, self.type = inner.name, inner.type
        self.blobs = inner.blobs
        self.loss_weights = inner.loss_weights
        self.param_propagate_down = [False] * len(inner.blobs)
        self.bias = inner.blobs[1].data if len(inner.blobs) > 1 else None
        self._valid_cache = {}
        self._plan = None

    def _fast(self, xp, group=1, conv=None):
        """The compiled CPU plan (``packed_cpu``), or None where it does not run."""
        if not packed_cpu.usable(xp, group):
            return None
        if self._plan is None:
            self._plan = packed_cpu.FastPlan(self.weights, self.coding, self.bias, conv)
        return self._plan

    def reshape(self, bottom, top):
        self.inner.reshape(bottom, top)

    def backward(self, top, propagate_down, bottom):
        raise PackedRuntimeError("layer '%s': the packed runtime has no backward" % self.name)



class PackedInnerProduct(_PackedLinear):
    def forward(self, bottom, top):
        inner = self.inner
        x = bottom[0].data.reshape(inner.m, inner.k)
        plan = self._fast(backend.get_array_module(x))
        if plan is not None:
            top[0].data = plan.inner_product(x).reshape(top[0].shape)
            return
        y = packed_ops.packed_matmul(self.coding.index(x), self.coding, self.weights)
        if self.bias is not None:
            y += self.bias.reshape(1, -1)
        top[0].data = y.reshape(top[0].shape)


class PackedConvolution(_PackedLinear):
    def _valid_sums(self, group, xp):
        """V (L, N/g) for group ``group``: sum of s_nj over the non-padding
        inputs of each output position (None without padding)."""
        inner = self.inner
        if not any(inner.pad) or self.coding.base == 0:
            return None
        key = (inner.in_size, group)
        if key not in self._valid_cache:
            cg = inner.channels // inner.group
            ones = xp.ones((1, cg) + tuple(inner.in_size), xp.float32)
            valid = im2col(ones, inner.kernel, inner.stride, inner.pad, inner.dilation,
                           inner.out_size, batch_first=True).reshape(cg * int(
                               np.prod(inner.kernel)), -1)
            rows = self._rows(group)
            s = xp.asarray(self.weights.signs()[rows], xp.float32)
            self._valid_cache[key] = (valid.T @ s.T).round().astype(xp.int64)
        return self._valid_cache[key]

    def _rows(self, group):
        per = self.inner.num_output // self.inner.group
        return slice(group * per, (group + 1) * per)

    def forward(self, bottom, top):
        inner = self.inner
        xp = backend.get_array_module(bottom[0].data)
        n, g = inner.num, inner.group
        og = inner.num_output // g
        plan = None if len(inner.kernel) != 2 else self._fast(
            xp, g, (inner.num_output, inner.channels) + tuple(inner.kernel))
        if plan is not None:
            x = bottom[0].data.reshape((n, inner.channels) + inner.in_size)
            y = plan.convolution(x, inner.kernel, inner.stride, inner.pad, inner.dilation,
                                 inner.out_size, self._valid_sums(0, xp))
            top[0].data = y.reshape(top[0].shape)
            return
        idx = self.coding.index(bottom[0].data).reshape((n, inner.channels) + inner.in_size)
        cols = im2col(idx, inner.kernel, inner.stride, inner.pad, inner.dilation,
                      inner.out_size, batch_first=True)
        length = int(np.prod(inner.out_size))
        cols = cols.reshape(n, g, -1, length)
        y = xp.empty((n, inner.num_output, length), xp.float32)
        for gi in range(g):
            rows = xp.ascontiguousarray(cols[:, gi].transpose(0, 2, 1)).reshape(n * length, -1)
            w = self.weights if g == 1 else self._group_weights(gi)
            v = self._valid_sums(gi, xp)
            if v is not None:
                v = xp.broadcast_to(v[None], (n, length, og)).reshape(n * length, og)
            part = packed_ops.packed_matmul(rows, self.coding, w, v)
            y[:, gi * og:(gi + 1) * og] = part.reshape(n, length, og).transpose(0, 2, 1)
        if self.bias is not None:
            y += self.bias.reshape(1, -1, 1)
        top[0].data = y.reshape(top[0].shape)

    def _group_weights(self, gi):
        cache = self.__dict__.setdefault("_groups", {})
        if gi not in cache:
            w = self.weights
            rows = self._rows(gi)
            s = w.signs()[rows]
            cache[gi] = packed_ops.PackedWeights.from_signs(
                backend.to_numpy(w.alpha)[rows], s, s.shape, ternary=w.ternary).to(
                    backend.get_array_module(w.pos))
        return cache[gi]


class _SkippedBatchNorm:
    """A BatchNorm folded into the next Quant's thresholds: passes x through."""

    def __init__(self, inner):
        self.inner, self.name, self.type = inner, inner.name, inner.type
        self.blobs, self.loss_weights = inner.blobs, inner.loss_weights
        self.param_propagate_down = [False] * len(inner.blobs)

    def reshape(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        if top[0] is not bottom[0]:
            top[0].data = bottom[0].data


class ThresholdQuant(_SkippedBatchNorm):
    """Quant(BatchNorm(x)) as per-channel thresholds on x (axis 1): the level
    index is the number of thresholds x exceeds."""

    def __init__(self, inner, bn_param, bn_blobs, levels):
        super().__init__(inner)
        q = inner.param.quant_param
        if q.forward_func == "sign":
            cuts = [-np.float32(1e-45)]  # BN(x) >= 0: -0.0 counts as >= 0
        else:
            centers = np.asarray(q.centers, np.float32)
            cuts = [0.0] + list((centers[:-1] + centers[1:]) / np.float32(2))
        self.levels = np.asarray(levels, np.float32)
        if q.forward_func == "hwgq" and not q.negative_slope:
            self.levels[0] = -np.float32(0.0)
        self.tau = batchnorm_thresholds(bn_blobs, bn_param.eps, cuts)  # (C, T)

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        tau = xp.asarray(self.tau).reshape((1,) + self.tau.shape[:1] + (1,) * (x.ndim - 2)
                                           + self.tau.shape[1:])
        idx = (x[..., None] > tau).sum(axis=-1)
        top[0].data = xp.asarray(self.levels)[idx]


class PackedNet(Net):
    """A Net built from a packed model: ``PackedNet(path)`` (TEST phase).
    ``forward`` / ``blobs`` as the pycaffe Net; ``packed_layers`` maps each
    packed layer's name to "xnor", "bit-serial" or "float"."""

    def __init__(self, path):
        from . import pack
        model = pack.load_packed(path)
        for lp in model.net.layer:
            if lp.type not in SUPPORTED:
                raise PackedRuntimeError(
                    "%s: the packed runtime cannot run layer '%s' of type %s (it runs: %s)"
                    % (path, lp.name, lp.type, ", ".join(sorted(SUPPORTED))))
        self.packed_layers = {}
        super().__init__(model.net, TEST)
        self._install(model, path)

    def _install(self, model, path):
        self._fold_thresholds(model)
        for i, (name, layer) in enumerate(zip(self._layer_names, self.layers)):
            for j, a in model.floats.get(name, {}).items():
                layer.blobs[j].set_values(a.reshape(layer.blobs[j].shape))
            packed = model.packed.get(name)
            if packed is None:
                continue
            lp = self._param.layer[i]
            levels = _producer_levels(self._param, i, lp.bottom[0])
            layer.blobs[0].set_values(packed.dense().reshape(layer.blobs[0].shape))
            if levels is None:
                self.packed_layers[name] = "float"
                continue
            coding = packed_ops.ActivationCoding(levels)
            packed = packed.to(backend.array_module())
            cls = PackedConvolution if lp.type == "Convolution" else PackedInnerProduct
            self.layers[i] = cls(layer, packed, coding)
            self.packed_layers[name] = ("xnor" if coding.is_sign and not packed.ternary
                                        else "bit-serial")

    def _fold_thresholds(self, model):
        """Replace BatchNorm -> Quant(sign / hwgq) pairs by ThresholdQuant."""
        layers = self._param.layer
        self.threshold_folded = []
        for i in range(len(layers) - 1):
            bn, q = layers[i], layers[i + 1]
            if bn.type != "BatchNorm" or q.type != "Quant" or list(q.bottom) != [bn.top[0]]:
                continue
            levels = _quant_levels(q)
            blobs = model.floats.get(bn.name, {})
            readers = [j for j in range(i + 1, len(layers)) if bn.top[0] in layers[j].bottom]
            if levels is None or readers != [i + 1] or len(blobs) != 3:
                continue
            if not self.layers[i].use_global_stats:
                continue
            self.layers[i] = _SkippedBatchNorm(self.layers[i])
            self.layers[i + 1] = ThresholdQuant(self.layers[i + 1], bn.batch_norm_param,
                                                [blobs[j] for j in range(3)], levels)
            self.threshold_folded.append(bn.name)

    def forward(self, **inputs):
        """Set the named inputs (host or device arrays: copied to the blobs'
        device), run, and return {output blob: array}."""
        for name, value in inputs.items():
            blob = self.blob_by_name(name)
            blob.reshape(*np.shape(value))
            blob.data[...] = backend.to_device(value, blob.xp)
        self.forward_prefilled()
        consumed = {b for lp in self._param.layer for b in lp.bottom}
        return {n: self.blob_by_name(n).data for n in self._blob_names if n not in consumed}
