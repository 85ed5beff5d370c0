"""Weight fillers, with Caffe's FillerParameter semantics.

For a blob of shape (N, C, ...) with count K:
  fan_in = K / N, fan_out = K / C (K when the blob has one axis);
  n = fan_in | fan_out | (fan_in + fan_out) / 2 by ``variance_norm``.

  constant          w = value
  uniform           w ~ U[min, max)
  gaussian          w ~ N(mean, std^2); with ``sparse`` s >= 0 each weight is
                    kept with probability s / N and zeroed otherwise
  positive_unitball w ~ U[0, 1), then each of the N rows divided by its sum
  xavier            w ~ U[-sqrt(3 / n), sqrt(3 / n))
  msra              w ~ N(0, 2 / n)
  bilinear          a bilinear-interpolation kernel over the last two axes:
                    f = ceil(W / 2), c = (W - 1) / (2 f),
                    w[..., y, x] = (1 - |x / f - c|) (1 - |y / f - c|)

Draws come from the library's seeded generator (``set_random_seed``), not from
Caffe's boost generator, so values match Caffe in distribution, not draw by draw.
"""
import math

import numpy as np

from . import backend
from ..proto import caffe_pb2

_VarianceNorm = caffe_pb2.FillerParameter


class FillerError(ValueError):
    pass


_KINDS = ("constant", "uniform", "gaussian", "positive_unitball", "xavier", "msra", "bilinear")


def _fans(shape):
    count = int(np.prod(shape, dtype=np.int64))
    if not shape or shape[0] == 0:
        raise FillerError("cannot fill a blob of shape %s" % (tuple(shape),))
    fan_in = count / shape[0]
    fan_out = count / shape[1] if len(shape) > 1 else count
    return fan_in, fan_out


def _norm(param, shape):
    fan_in, fan_out = _fans(shape)
    if param.variance_norm == _VarianceNorm.FAN_OUT:
        return fan_out
    if param.variance_norm == _VarianceNorm.AVERAGE:
        return (fan_in + fan_out) / 2.0
    return fan_in


def filler_values(param, shape, rng=None):
    """A float64 NumPy array of ``shape`` filled as FillerParameter ``param`` says."""
    rng = rng or backend.rng()
    shape = tuple(int(d) for d in shape)
    kind = param.type
    if 0 in shape and kind in _KINDS:      # nothing to fill (fans of 0 divide by 0)
        return np.zeros(shape)
    if kind == "constant":
        return np.full(shape, param.value, np.float64)
    if kind == "uniform":
        return rng.uniform(param.min, param.max, shape)
    if kind == "gaussian":
        values = rng.normal(param.mean, param.std, shape)
        if param.sparse >= 0:
            if len(shape) < 1:
                raise FillerError("sparse gaussian needs a blob with at least one axis")
            keep = rng.random(shape) < param.sparse / float(shape[0])
            values = values * keep
        return values
    if kind == "positive_unitball":
        values = rng.uniform(0.0, 1.0, shape)
        if values.size == 0:
            return values
        rows = values.reshape(shape[0] if shape else 1, -1)
        rows /= rows.sum(axis=1, keepdims=True)
        return rows.reshape(shape)
    if kind == "xavier":
        scale = math.sqrt(3.0 / _norm(param, shape))
        return rng.uniform(-scale, scale, shape)
    if kind == "msra":
        return rng.normal(0.0, math.sqrt(2.0 / _norm(param, shape)), shape)
    if kind == "bilinear":
        if len(shape) != 4 or shape[2] != shape[3]:
            raise FillerError("bilinear filler needs a 4-D blob with square kernels, "
                              "got shape %s" % (shape,))
        width = shape[3]
        f = math.ceil(width / 2.0)
        c = (width - 1) / (2.0 * f)
        ramp = 1.0 - np.abs(np.arange(width) / f - c)
        return np.broadcast_to(np.outer(ramp, ramp), shape).copy()
    raise FillerError("unknown filler type %r (expected constant, uniform, gaussian, "
                      "positive_unitball, xavier, msra or bilinear)" % kind)


# Draws for blobs larger than this many values are made in chunks of it, each
# cast into the blob as it comes: a float64 array of the whole blob (AlexNet's
# fc6: 302 MB) would double the peak memory of building a net.
CHUNK = 1 << 20
_STREAMED = ("uniform", "gaussian", "xavier", "msra")


def _draw(param, shape):
    """``draw(rng, n)``: the next n values of the stream ``filler_values``
    draws for the elementwise random kinds (one draw of all values is the
    same as consecutive draws of its parts)."""
    kind = param.type
    if kind == "uniform":
        return lambda rng, n: rng.uniform(param.min, param.max, n)
    if kind == "gaussian":
        return lambda rng, n: rng.normal(param.mean, param.std, n)
    if kind == "xavier":
        scale = math.sqrt(3.0 / _norm(param, shape))
        return lambda rng, n: rng.uniform(-scale, scale, n)
    std = math.sqrt(2.0 / _norm(param, shape))          # msra
    return lambda rng, n: rng.normal(0.0, std, n)


def _fill_in_chunks(out, param, shape, rng):
    """``out`` (flat, the blob's dtype) gets ``filler_values(param, shape)``
    cast to its dtype, drawn CHUNK values at a time: the same values from the
    same stream, never a float64 copy of the whole blob."""
    draw = _draw(param, shape)
    for start in range(0, out.size, CHUNK):
        stop = min(start + CHUNK, out.size)
        out[start:stop] = draw(rng, stop - start)
    if param.type == "gaussian" and param.sparse >= 0:
        for start in range(0, out.size, CHUNK):       # then the keep mask, as filler_values
            stop = min(start + CHUNK, out.size)
            out[start:stop] *= rng.random(stop - start) < param.sparse / float(shape[0])


def fill(blob, param):
    """Fill ``blob.data`` in place as FillerParameter ``param`` says."""
    if param.type == "constant":            # Caffe's default filler: no float64 copy either
        blob.data[...] = param.value
        return blob
    if (param.type in _STREAMED and blob.count > CHUNK and 0 not in blob.shape
            and blob.data.flags.c_contiguous):
        shape = tuple(int(d) for d in blob.shape)
        on_host = isinstance(blob.data, np.ndarray)
        out = blob.data.reshape(-1) if on_host else np.empty(blob.count, blob.data.dtype)
        _fill_in_chunks(out, param, shape, backend.rng())
        if not on_host:
            blob.set_values(out.reshape(shape))
        return blob
    values = filler_values(param, blob.shape)
    blob.set_values(values)
    return blob
