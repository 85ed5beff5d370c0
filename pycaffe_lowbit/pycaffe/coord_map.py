"""Spatial correspondence between tops of a NetSpec net: pycaffe's ``coord_map``.

A coordinate map is a triple ``(axis, a, b)``: position x in a layer's bottom
goes to position ``a * x + b`` in its top, for every spatial axis after
``axis`` (``a`` and ``b`` are NumPy arrays, one entry per spatial axis or one
for all; ``axis`` None means "any", as for pass-through layers).

    Convolution, Pooling, Im2col   a = 1/s,  b = (p - (k_eff - 1)/2) / s
    Deconvolution                  a = s,    b = (k_eff - 1)/2 - p
    Crop (axis c, offset o)        a = 1,    b = -o, on axis c - 1
    pass-through layers (ReLU...)  a = 1,    b = 0

with stride s, pad p and kernel extent k_eff = (k - 1) * dilation + 1.
``crop(top_from, top_to)`` uses this to make the ``L.Crop`` layer that cuts
``top_from`` to line up with ``top_to`` (as FCN's skip connections do).

Errors have pycaffe's types: a failed precondition of ``crop`` or of
``conv_params`` raises ``PycaffeAssertionError`` (an AssertionError, as
pycaffe's ``assert``, and a ValueError; raised under ``python -O`` too); a
layer without ``kernel_size`` raises ``PycaffeKeyError`` (pycaffe's
``params['kernel_size']``). Differences from pycaffe:
``kernel_size``... may also be given inside ``pooling_param=dict(...)``; global
pooling has no map (``GlobalPoolingMapException``, an UndefinedMapException and,
as pycaffe's missing ``kernel_size``, a KeyError); the search is breadth-first, so it
does not depend on set order; ``crop`` between tops joined only by
pass-through layers crops from axis 2 (pycaffe fails on the missing axis).
"""
import collections

import numpy as np

from ..core.errors import PycaffeAssertionError, PycaffeKeyError
from .net_spec import layers as L

__all__ = ["PASS_THROUGH_LAYERS", "AxisMismatchException", "UndefinedMapException",
           "GlobalPoolingMapException", "conv_params", "crop_params", "coord_map", "compose", "inverse",
           "coord_map_from_to", "crop"]

# Layers whose top lines up pixel for pixel with their (first) bottom.
PASS_THROUGH_LAYERS = ["AbsVal", "BatchNorm", "Bias", "BNLL", "Dropout", "Eltwise",
                       "ELU", "Log", "LRN", "Exp", "MVN", "Power", "ReLU", "PReLU",
                       "Scale", "Sigmoid", "Split", "TanH", "Threshold"]

_LEGACY_2D = ("pad_h", "pad_w", "kernel_h", "kernel_w", "stride_h", "stride_w")


class UndefinedMapException(Exception):
    """The layer has no coordinate map (fully connected, global pooling, ...)."""


class AxisMismatchException(Exception):
    """Two maps start their spatial axes at different places."""


class GlobalPoolingMapException(UndefinedMapException, KeyError):
    """Global pooling: no map (pycaffe fails on its missing ``kernel_size``)."""

    __str__ = BaseException.__str__


def _vector(value):
    return np.array(value, ndmin=1)


def _layer_params(fn, message_field):
    """The layer's keywords: those inside ``message_field=dict(...)`` if given,
    else the keywords themselves."""
    return fn.params.get(message_field, fn.params)


def conv_params(fn):
    """(axis, stride, kernel extent, pad) of a Convolution-like layer
    Function, as arrays; kernel extent = (kernel_size - 1) * dilation + 1."""
    field = "pooling_param" if fn.type_name == "Pooling" else "convolution_param"
    params = _layer_params(fn, field)
    legacy = sorted(set(_LEGACY_2D) & (set(fn.params) | set(params)))
    if legacy:
        raise PycaffeAssertionError("coord_map: layer %s uses %s; cropping supports only "
                                    "kernel_size/stride/pad"
                                    % (fn.type_name, ", ".join(legacy)))
    if params.get("global_pooling"):
        raise GlobalPoolingMapException("global pooling has no coordinate map")
    if "kernel_size" not in params:
        raise PycaffeKeyError("coord_map: layer %s has no kernel_size" % fn.type_name)
    extent = (_vector(params["kernel_size"]) - 1) * _vector(params.get("dilation", 1)) + 1
    return (params.get("axis", 1), _vector(params.get("stride", 1)), extent,
            _vector(params.get("pad", 0)))


def crop_params(fn):
    """(axis, offset) of a Crop layer Function; Caffe's defaults axis=2, offset=0."""
    params = _layer_params(fn, "crop_param")
    return params.get("axis", 2), _vector(params.get("offset", 0))


def coord_map(fn):
    """The map (axis, a, b) from layer ``fn``'s bottom to its top."""
    kind = fn.type_name
    if kind in ("Convolution", "Pooling", "Im2col"):
        axis, stride, extent, pad = conv_params(fn)
        return axis, 1 / stride, (pad - (extent - 1) / 2) / stride
    if kind == "Deconvolution":
        axis, stride, extent, pad = conv_params(fn)
        return axis, stride, (extent - 1) / 2 - pad
    if kind in PASS_THROUGH_LAYERS:
        return None, 1, 0
    if kind == "Crop":
        axis, offset = crop_params(fn)
        return axis - 1, 1, -offset  # axis - 1: the last non-spatial axis
    raise UndefinedMapException("no coordinate map for layer type %s" % kind)


def compose(base_map, next_map):
    """``next_map`` after ``base_map``: x -> a1 * (a2 * x + b2) + b1."""
    ax1, a1, b1 = base_map
    ax2, a2, b2 = next_map
    if ax1 is not None and ax2 is not None and ax1 != ax2:
        raise AxisMismatchException("spatial axes start at %s and at %s" % (ax1, ax2))
    axis = ax2 if ax1 is None else ax1
    return axis, a1 * a2, a1 * b2 + b1


def inverse(coord_map):
    """The map undoing ``coord_map``: y -> (y - b) / a."""
    axis, a, b = coord_map
    return axis, 1 / a, -b / a


def _bottoms(top):
    """Bottoms through which coordinates flow: a Crop's reference (second)
    bottom gives only its shape."""
    inputs = top.fn.inputs
    return inputs[:1] if top.fn.type_name == "Crop" else inputs


def _maps_below(top):
    """Yield (blob, map from blob's coordinates to ``top``'s), nearest first."""
    maps = {top: (None, 1, 0)}
    queue = collections.deque([top])
    while queue:
        current = queue.popleft()
        yield current, maps[current]
        try:
            step = coord_map(current.fn)
        except UndefinedMapException:
            continue
        for bottom in _bottoms(current):
            if bottom not in maps:
                maps[bottom] = compose(maps[current], step)
                queue.append(bottom)


def coord_map_from_to(top_from, top_to):
    """The map (axis, a, b) taking coordinates of ``top_from`` to those of
    ``top_to``, through their nearest common ancestor blob."""
    from_maps = dict(_maps_below(top_from))
    for blob, to_map in _maps_below(top_to):
        if blob in from_maps:
            return compose(to_map, inverse(from_maps[blob]))
    raise RuntimeError("Could not compute map between tops; are they "
                       "connected by spatial layers?")


def crop(top_from, top_to):
    """An ``L.Crop`` top cutting ``top_from`` to line up with ``top_to``
    (axis and offsets from ``coord_map_from_to``)."""
    axis, a, b = coord_map_from_to(top_from, top_to)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not np.all(a == 1):
        raise PycaffeAssertionError("scale mismatch on crop (a = %s)" % a)
    if not np.all(b <= 0):
        raise PycaffeAssertionError("cannot crop negative offset (b = %s)" % b)
    if not np.all(np.round(b) == b):
        raise PycaffeAssertionError("cannot crop noninteger offset (b = %s)" % b)
    offset = [int(v) for v in -np.round(np.atleast_1d(b))]
    if axis is None:  # only pass-through layers between them: Caffe's default axis
        axis = 1
    return L.Crop(top_from, top_to, crop_param=dict(axis=axis + 1, offset=offset))
