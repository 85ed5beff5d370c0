"""Binary and ternary convolution / inner product (the SQ and HWGQ forks).

Each is the ordinary layer computing with an effective weight Q = q(W) made
from the latent float weight W (the layer's blob 0, what a .caffemodel
stores), viewed as a (num_output, k) matrix with one row per output filter
(k = C / group * prod(kernel), or K for inner product):

    top = conv(x, Q) + b          (or x Q^T + b)
    dL/dx = the ordinary input gradient with Q
    dL/dW = the ordinary weight gradient (straight-through: no alpha factor,
            no clipping mask), accumulated into W's diff; dL/db as usual

Q is recomputed at every forward, in both phases; the quantizers live in
``pycaffe_lowbit.quant``.

Which fork's meaning a Binary* layer takes (the two forks share the type names
and their defaults disagree):

* with ``binary_convolution_param`` / ``binary_inner_product_param`` present
  (even empty, ``binary_convolution_param {}``): HWGQ. Q = a_n sign(W) with
  a_n = mean |W_n| if ``use_alpha`` (default false) else 1; with
  ``use_binarization: false`` Q = W.
* without it: SQ. Q = a_n sign(W), a_n = mean |W_n| always (BWN).

Every HWGQ model file writes the message and no SQ file does, so both forks'
files keep their meaning. Ternary* layers are SQ's TWN and take no
``binary_*_param``. In both cases ``sq: true`` with ``ratio < 100`` (in
``convolution_param`` / ``inner_product_param``) adds the SQ fork's stochastic
selection: a roulette redrawn at every forward keeps
int((1 - ratio/100) num) rows in full precision. The quantized inner products
keep W as num_output x K and ignore ``transpose``, as the HWGQ fork does.
"""
import numpy as np

from .. import quant
from .conv import Convolution
from .inner_product import InnerProduct
from .registry import register


class QuantizedWeight:
    """Mixin: the layer's GEMMs use Q = quantizer(W), W seen as (num, k) rows
    (see the module docstring); ``_make_quantizer`` gives the quantizer, or None
    when the weights are used as they are."""

    ternary = False
    binary_field = None          # the HWGQ message that selects HWGQ semantics
    sq_field = None              # convolution_param or inner_product_param

    def layer_setup(self, bottom, top):
        super().layer_setup(bottom, top)
        self.weight_quantizer = self._make_quantizer()
        self._w_eff = None

    def _make_quantizer(self):
        has_binary = self.param.HasField(self.binary_field)
        if self.ternary:
            if has_binary:
                raise self.error("%s applies to Binary* layers, not %s"
                                 % (self.binary_field, self.type))
            q = quant.TernaryWeights()
        elif has_binary:
            bp = getattr(self.param, self.binary_field)
            q = quant.BinaryWeights(bp.use_alpha) if bp.use_binarization else None
        else:
            q = quant.BinaryWeights(use_alpha=True)
        sq = getattr(self.param, self.sq_field)
        if sq.sq and q is not None:
            if not 0 <= sq.ratio <= 100:
                raise self.error("%s.ratio is the percentage of quantized filters and "
                                 "must be in [0, 100] (got %g)" % (self.sq_field, sq.ratio))
            if sq.ratio < 100:
                q = quant.StochasticSelection(q, sq.ratio)
        return q

    def _forward_weight(self):
        w = self.blobs[0].data
        if self.weight_quantizer is None:
            self._w_eff = w
        else:
            rows = w.reshape(w.shape[0], -1)
            q = self.weight_quantizer
            if getattr(q, "takes_out", False):
                self._w_eff = q.forward(rows, out=self._q_buffer(rows)).reshape(w.shape)
            else:
                self._w_eff = q.forward(rows).reshape(w.shape)
        return self._w_eff

    def _backward_weight(self):
        return self._w_eff

    def _q_buffer(self, rows):
        """The layer's own array for Q (NumPy), reused at every forward: Q of the
        last forward is only needed until the next one (``_backward_weight``)."""
        if not isinstance(rows, np.ndarray):
            return None
        buf = getattr(self, "_q_buf", None)
        if buf is None or buf.shape != rows.shape or buf.dtype != rows.dtype:
            buf = self._q_buf = np.empty_like(rows)
        return buf


class _QuantizedConvolution(QuantizedWeight, Convolution):
    binary_field = "binary_convolution_param"
    sq_field = "convolution_param"


class _QuantizedInnerProduct(QuantizedWeight, InnerProduct):
    binary_field = "binary_inner_product_param"
    sq_field = "inner_product_param"
    honours_transpose = False


@register("BinaryConvolution")
class BinaryConvolution(_QuantizedConvolution):
    """Convolution with Q = a_n sign(W_n) (BWN / HWGQ); see the module docstring."""


@register("TernaryConvolution")
class TernaryConvolution(_QuantizedConvolution):
    """Convolution with TWN weights Q = a_n t_n (SQ fork); see the module docstring."""
    ternary = True


@register("BinaryInnerProduct")
class BinaryInnerProduct(_QuantizedInnerProduct):
    """InnerProduct with Q = a_n sign(W_n); ``transpose`` is ignored."""


@register("TernaryInnerProduct")
class TernaryInnerProduct(_QuantizedInnerProduct):
    """InnerProduct with TWN weights (SQ fork); ``transpose`` is ignored."""
    ternary = True
