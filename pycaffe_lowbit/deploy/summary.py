"""What a net costs, layer by layer: bits, parameters, MACs and memory
(``net.summary()``, ``lowbit-caffe summary``; Larq's ``larq.models.summary``
for Caffe nets).

Per layer (``LayerSummary``):

    top_shapes     the shapes of its tops, batch axis included
    params         values of the float model: the weight the layer computes
                   with (for weight search W, not its K logits per weight) plus
                   every other blob (bias, BatchNorm statistics); a blob shared
                   with an earlier layer (ParamSpec name) counts once
    weight_bits    bits of one weight as the layer computes it: 32; 1 binary
                   (BWN, HWGQ, ``use_binarization``); 2 ternary (TWN); QNN and
                   weight search: the bits that index their values
                   (``quant``'s ``precision``); None for a layer without a
                   weight. A plain Convolution / InnerProduct whose every row
                   holds only {-a_n, +a_n} or {-a_n, 0, +a_n} (a deploy net's
                   pre-binarized weights) counts as 1 or 2 bits when
                   ``infer_from_weights``; an all-zero weight (no weights
                   loaded) counts as float.
    input_bits     bits of its input activations as it reads them: a Quant /
                   QNNActivation output has the bits that index its levels
                   (HWGQ "3ne": 4 levels, 2 bits; sign: 1), kept through
                   Split, Flatten, Reshape, MAX pooling, Concat (the union of
                   the levels) and TEST-phase Dropout; anything else is 32;
                   None for a layer without bottoms. The largest over bottoms.
    macs           multiply-accumulates per item of the batch (axis 0), for
                   Convolution, Deconvolution, InnerProduct and their
                   quantized forms: top.count * k / N (k = weights per output
                   filter), bottom.count * k' / N for Deconvolution; 0 else
    mac_bits       max(input_bits, weight_bits) (Larq's rule): 32 is a float
                   MAC, fewer a low-bit (xnor / popcount) one
    trained_bytes  its blobs as a .caffemodel stores them (float32 each; the
                   logits for weight search)
    deployed_bytes a quantized weight as bit planes (``pack.py``'s layout,
                   what ``lowbit-caffe deploy`` writes for binary and ternary
                   layers: per row ceil(k / 64) 64-bit words per bit, plus a
                   float32 alpha per row; QNN one float32 scale, weight search
                   its K float32 values); everything else float32
    float_bytes    params * 4: the same net with float32 weights

``NetSummary`` adds the totals, MACs by precision and the compression of the
float model into the deployed one; ``summary_format`` prints it.
"""
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..core import backend
from ..layers.conv import Deconvolution, _ConvolutionBase
from ..layers.inner_product import InnerProduct
from ..proto import caffe_pb2
from ..quant.activations import level_bits

FLOAT_BITS = 32
WORD_BITS = 64               # pack.py's rows: uint64 words
# Layers whose output takes only values of their (first) input.
_LEVEL_PRESERVING = ("Split", "Flatten", "Reshape", "Slice", "Crop", "Tile")


@dataclass
class LayerSummary:
    name: str
    type: str
    top_shapes: list
    params: int = 0
    weight_bits: Optional[int] = None
    input_bits: Optional[int] = None
    macs: int = 0
    trained_bytes: int = 0
    deployed_bytes: int = 0
    float_bytes: int = 0
    weights: int = 0            # of ``params``, the weight's own values

    @property
    def mac_bits(self):
        """Precision of this layer's MACs (None when it has none)."""
        if not self.macs:
            return None
        return max(self.input_bits or FLOAT_BITS, self.weight_bits or FLOAT_BITS)

    @property
    def float_macs(self):
        return self.macs if self.mac_bits == FLOAT_BITS else 0

    @property
    def lowbit_macs(self):
        return self.macs if self.macs and self.mac_bits < FLOAT_BITS else 0


@dataclass
class NetSummary:
    """The rows of a net's summary and their totals (see the module docstring)."""
    name: str
    layers: list = field(default_factory=list)

    def _sum(self, attribute):
        return sum(getattr(row, attribute) for row in self.layers)

    params = property(lambda self: self._sum("params"))
    macs = property(lambda self: self._sum("macs"))
    float_macs = property(lambda self: self._sum("float_macs"))
    lowbit_macs = property(lambda self: self._sum("lowbit_macs"))
    trained_bytes = property(lambda self: self._sum("trained_bytes"))
    deployed_bytes = property(lambda self: self._sum("deployed_bytes"))
    float_bytes = property(lambda self: self._sum("float_bytes"))

    @property
    def params_by_bits(self):
        """{bits: parameter count}: weights at their bits, every other value at 32."""
        out = {}
        for row in self.layers:
            if row.weights:
                bits = row.weight_bits or FLOAT_BITS
                out[bits] = out.get(bits, 0) + row.weights
            if row.params - row.weights:
                out[FLOAT_BITS] = out.get(FLOAT_BITS, 0) + row.params - row.weights
        return dict(sorted(out.items()))

    @property
    def macs_by_bits(self):
        """{MAC precision: MACs per item}."""
        out = {}
        for row in self.layers:
            if row.macs:
                out[row.mac_bits] = out.get(row.mac_bits, 0) + row.macs
        return dict(sorted(out.items()))

    @property
    def compression(self):
        """float_bytes / deployed_bytes: how much smaller the deployed model is."""
        return self.float_bytes / self.deployed_bytes if self.deployed_bytes else 1.0

    def row(self, name):
        """The LayerSummary of layer ``name``."""
        for row in self.layers:
            if row.name == name:
                return row
        raise KeyError("no layer named '%s' in the summary of '%s'" % (name, self.name))

    def to_text(self):
        from .summary_format import to_text
        return to_text(self)

    def to_html(self):
        from .summary_format import to_html
        return to_html(self)

    __str__ = to_text

    def _repr_html_(self):
        return self.to_html()

    def _repr_pretty_(self, printer, cycle):
        printer.text(self.to_text())


# -- bits ----------------------------------------------------------------------
def _is_mac_layer(layer):
    return isinstance(layer, (_ConvolutionBase, InnerProduct))


def _inferred_bits(w):
    """1 / 2 when every row of ``w`` is {-a, +a} / {-a, 0, +a} (not all zero), else 32."""
    rows = backend.to_numpy(w).reshape(w.shape[0], -1)
    if not rows.size or not rows.any():
        return FLOAT_BITS
    alpha = np.abs(rows).max(axis=1, keepdims=True)
    magnitudes = np.abs(rows)
    if not np.all((magnitudes == 0) | (magnitudes == alpha)):
        return FLOAT_BITS
    return 2 if (rows == 0).any() else 1


def weight_quantizer(layer):
    """The object that quantizes ``layer``'s weight (with a ``precision``), or None."""
    return getattr(layer, "weight_quantizer", None) or getattr(layer, "search", None)


def weight_bits(layer, infer_from_weights=True):
    """Bits of one of ``layer``'s weights as it computes with them (None without a weight)."""
    if not _is_mac_layer(layer) or not layer.blobs:
        return None
    quantizer = weight_quantizer(layer)
    if quantizer is not None:
        return int(quantizer.precision)
    if hasattr(layer, "weight_quantizer") or not infer_from_weights:
        return FLOAT_BITS       # a quantized layer type computing with W as it is
    return _inferred_bits(layer.blobs[0].data)


def output_levels(layer, input_levels):
    """The level set of ``layer``'s tops from its bottoms' (None: float)."""
    quantizer = getattr(layer, "quantizer", None)
    if quantizer is not None and hasattr(quantizer, "levels"):
        return quantizer.levels
    if not input_levels or any(levels is None for levels in input_levels):
        return None
    kind = layer.type
    pooling = layer.param.pooling_param
    if (kind in _LEVEL_PRESERVING or (kind == "Dropout" and layer.phase == caffe_pb2.TEST)
            or (kind == "Pooling" and pooling.pool == pooling.MAX)):
        return input_levels[0]
    if kind == "Concat":
        return tuple(sorted(set().union(*input_levels)))
    return None


def _bits(levels):
    return FLOAT_BITS if levels is None else level_bits(len(set(levels)))


# -- counts --------------------------------------------------------------------
def _weight_count(layer):
    shape = getattr(layer, "weight_shape", None)       # weight search: W, not logits
    return int(np.prod(shape)) if shape is not None else layer.blobs[0].count


def _macs(layer, bottoms, tops):
    if not _is_mac_layer(layer) or not layer.blobs:
        return 0
    weights = _weight_count(layer)
    first = (bottoms if isinstance(layer, Deconvolution) else tops)[0]
    per_filter = weights // _weight_shape(layer)[0]
    return first.count * per_filter // max(1, first.shape[0])


def _weight_shape(layer):
    shape = getattr(layer, "weight_shape", None)
    return tuple(shape) if shape is not None else layer.blobs[0].shape


def _packed_weight_bytes(layer, bits):
    """Bytes of a ``bits``-bit weight in pack.py's layout plus its scales."""
    shape = _weight_shape(layer)
    rows, k = shape[0], int(np.prod(shape[1:]))
    planes = rows * math.ceil(k / WORD_BITS) * (WORD_BITS // 8) * bits
    quantizer = weight_quantizer(layer)
    if hasattr(quantizer, "values"):                       # weight search: the value table
        return planes + 4 * len(quantizer.values)
    if quantizer is not None and hasattr(quantizer, "nb"):  # QNN: one power-of-two scale
        return planes + 4
    return planes + 4 * rows                               # a float32 alpha per row


def summarize(net, infer_from_weights=True):
    """The NetSummary of a built Net (any phase; its blobs' current shapes)."""
    shared = {pl for pl, owner in zip(net._param_layer, net._param_owner) if owner >= 0}
    levels = {}                        # blob id -> level set of its latest writer
    rows = []
    for i, layer in enumerate(net.layers):
        bottom_ids, top_ids = net._bottom_id_vecs[i], net._top_id_vecs[i]
        in_levels = [levels.get(b) for b in bottom_ids]
        bottoms = [net._blobs[b] for b in bottom_ids]
        tops = [net._blobs[t] for t in top_ids]
        row = LayerSummary(net._layer_names[i], layer.type, [t.shape for t in tops])
        if bottom_ids:
            row.input_bits = max(_bits(lv) for lv in in_levels)
        row.weight_bits = weight_bits(layer, infer_from_weights)
        row.macs = _macs(layer, bottoms, tops)
        for k, blob in enumerate(layer.blobs):
            if (i, k) in shared:
                continue
            row.trained_bytes += 4 * blob.count
            is_weight = k == 0 and row.weight_bits is not None
            count = _weight_count(layer) if is_weight else blob.count
            row.params += count
            if is_weight:
                row.weights = count
            if is_weight and row.weight_bits < FLOAT_BITS:
                row.deployed_bytes += _packed_weight_bytes(layer, row.weight_bits)
            else:
                row.deployed_bytes += 4 * count
        row.float_bytes = 4 * row.params
        out = output_levels(layer, in_levels)
        for t in top_ids:
            levels[t] = out
        rows.append(row)
    return NetSummary(net.name, rows)


def summarize_file(model, weights=None, phase=caffe_pb2.TEST, input_shape=None,
                   level=0, stages=None):
    """Build ``model`` (a prototxt path or NetParameter) in ``phase`` with
    ``weights`` and summarize it. ``input_shape`` (N, C, H, W): data layers are
    replaced by an Input of that shape and losses dropped, as ``deploy`` does, so
    a train_val summarizes without its database. The net's INFO lines are held
    back while it is built."""
    import logging
    from ..core.net import Net
    from ..formats.text import read_net_param
    param = read_net_param(model) if isinstance(model, str) else model
    if input_shape:
        from .pipeline import deploy_form
        param = deploy_form(param, input_shape, model if isinstance(model, str) else "<model>")
    logger = logging.getLogger("pycaffe_lowbit")
    level_before = logger.level
    logger.setLevel(max(level_before, logging.WARNING))
    try:
        net = Net(param, phase, weights=weights or None, level=level, stages=stages)
    finally:
        logger.setLevel(level_before)
    return summarize(net, infer_from_weights=bool(weights))
