"""Quantizers: small objects shared by the low-bit layers (Larq-style).

A quantizer has ``forward(x)``, the value it puts in place of ``x``, and
``backward(x, dy)``, the pseudo-gradient (straight-through estimator) that
replaces the true derivative, which is zero almost everywhere. Everything is
written against the array module of its input, so NumPy and CuPy arrays both
work.

* Weight quantizers (``weights``) map a latent ``(num, k)`` matrix, one row per
  output filter, to the effective matrix the layer computes with.
* Activation quantizers (``activations``) are elementwise: a value function
  composed with a pseudo-gradient.
"""
from .activations import (ActivationQuantizer, HWGQ, HardTanh, HardTanhGrad, LeakyReLU,
                          ReLUGrad, Sign)
from .weights import (BinaryWeights, StochasticSelection, TernaryWeights, roulette_select,
                      row_errors, row_mean_abs)

__all__ = ["ActivationQuantizer", "HWGQ", "HardTanh", "HardTanhGrad", "LeakyReLU",
           "ReLUGrad", "Sign", "BinaryWeights", "StochasticSelection", "TernaryWeights",
           "roulette_select", "row_errors", "row_mean_abs"]
