"""Fold BatchNorm (and a Scale right after it) into the preceding layer.

A BatchNorm in global-statistics mode followed by an optional Scale is, per
channel c, the affine map

    y = f_c x + g_c,   f_c = gamma_c / sqrt(var_c + eps),  g_c = beta_c - mu_c f_c

(mu = blobs[0] / s, var = blobs[1] / s, s = blobs[2], 0 when s = 0; gamma = 1,
beta = 0 without Scale). When its input is produced by a Convolution or an
InnerProduct (output channels on axis 1) whose output nothing else reads,
the map moves into that layer: W'_c = f_c W_c, b'_c = f_c b_c + g_c (a bias
is added when the layer had none). Between the two there may be MAX Pooling
layers when every f_c > 0 (max commutes with an increasing map per channel).
This is exact in real arithmetic; in float32 it moves results by rounding
(~1e-7 relative), which can flip a quantizer level where a value sits on a
threshold. Binary weights stay binary: row c is scaled by f_c (alpha_c |f_c|,
signs flipped where f_c < 0), so the folded layer still packs.

``batchnorm_thresholds`` folds a BatchNorm into the thresholds of a following
sign / hwgq quantizer instead, exactly (the packed runtime uses it where a
BatchNorm was not folded into a layer; Caffe's schema has no per-channel
threshold quantizer, so the folded prototxt cannot express it).
"""
import numpy as np

from ..formats.blobproto import array_to_proto, blob_array
from ..proto import caffe_pb2

_TARGETS = ("Convolution", "InnerProduct")


def _affine(bn, scale):
    """(f, g) float64 per channel of BatchNorm ``bn`` and Scale ``scale`` (or None)."""
    mean, var, s = (blob_array(b).astype(np.float64).ravel() for b in bn.blobs)
    factor = 0.0 if s[0] == 0 else 1.0 / s[0]
    f = 1.0 / np.sqrt(var * factor + bn.batch_norm_param.eps)
    g = -mean * factor * f
    if scale is not None:
        gamma = blob_array(scale.blobs[0]).astype(np.float64).ravel()
        beta = (blob_array(scale.blobs[1]).astype(np.float64).ravel()
                if len(scale.blobs) > 1 else 0.0)
        f, g = f * gamma, g * gamma + beta
    return f, g


def _readers(layers, blob, after):
    return [i for i in range(after + 1, len(layers)) if blob in layers[i].bottom]


def _producer(layers, blob, before):
    for i in range(before - 1, -1, -1):
        if blob in layers[i].top:
            return i
    return None


def _chain(layers, bn_index):
    """Indices [target, MAX pooling...] whose last output is the BatchNorm's
    input and whose every output only the next link reads; or None."""
    bn = layers[bn_index]
    blob, reader = bn.bottom[0], bn_index
    chain = []
    i = _producer(layers, blob, bn_index)
    while i is not None:
        lp = layers[i]
        others = [r for r in _readers(layers, lp.top[0], i) if r != reader]
        in_place = reader == bn_index and bn.top[0] == bn.bottom[0]
        # later readers of an in-place BatchNorm's blob read its output
        ok = all(r > bn_index for r in others) if in_place else not others
        if len(lp.top) != 1 or not ok:
            return None
        chain.insert(0, i)
        if lp.type in _TARGETS:
            sub = lp.convolution_param if lp.type == "Convolution" else lp.inner_product_param
            if sub.axis != 1 or (lp.type == "InnerProduct" and sub.transpose):
                return None
            return chain
        if lp.type != "Pooling" or lp.pooling_param.pool != caffe_pb2.PoolingParameter.MAX:
            return None
        reader = i
        i = _producer(layers, lp.bottom[0], i)
    return None


def _scale_after(layers, bn_index):
    bn = layers[bn_index]
    if bn_index + 1 < len(layers):
        nxt = layers[bn_index + 1]
        if nxt.type == "Scale" and list(nxt.bottom) == [bn.top[0]] and len(nxt.bottom) == 1 \
                and nxt.scale_param.axis == 1 and len(nxt.blobs):
            readers = _readers(layers, bn.top[0], bn_index)
            if readers[:1] == [bn_index + 1] and (nxt.top[0] == bn.top[0] or len(readers) == 1):
                return bn_index + 1
    return None


def fold_batchnorm(net_param):
    """A copy of ``net_param`` (with blobs) with every foldable BatchNorm
    (+ Scale) folded; returns (NetParameter, [names of the folded layers])."""
    net = caffe_pb2.NetParameter()
    net.CopyFrom(net_param)
    folded = []
    i = 0
    while i < len(net.layer):
        lp = net.layer[i]
        chain = _chain(net.layer, i) if lp.type == "BatchNorm" and len(lp.blobs) == 3 else None
        if chain is None:
            i += 1
            continue
        s_index = _scale_after(net.layer, i)
        f, g = _affine(lp, net.layer[s_index] if s_index is not None else None)
        if len(chain) > 1 and not np.all(f > 0):
            i += 1
            continue
        _fold_into(net.layer[chain[0]], f, g)
        out = net.layer[s_index].top[0] if s_index is not None else lp.top[0]
        net.layer[chain[-1]].top[0] = out
        folded.append(lp.name)
        removed = [i] + ([s_index] if s_index is not None else [])
        if s_index is not None:
            folded.append(net.layer[s_index].name)
        for r in sorted(removed, reverse=True):
            del net.layer[r]
    return net, folded


def _fold_into(lp, f, g):
    w = blob_array(lp.blobs[0]).astype(np.float64)
    shape = w.shape
    w = w.reshape(len(f), -1) * f[:, None]
    param = lp.convolution_param if lp.type == "Convolution" else lp.inner_product_param
    b = blob_array(lp.blobs[1]).astype(np.float64).ravel() if param.bias_term else 0.0
    bias = (b * f + g).astype(np.float32)
    del lp.blobs[:]
    array_to_proto(w.reshape(shape).astype(np.float32), proto=lp.blobs.add())
    array_to_proto(bias, proto=lp.blobs.add())
    param.bias_term = True


# -- BatchNorm into the thresholds of a following quantizer -----------------------

def _ordered(x):
    """float32 -> int64 keys with the same order (-0.0 and +0.0 adjacent)."""
    i = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF) - 1, i)


def _unordered(k):
    k = np.asarray(k, np.int64)
    return np.where(k < 0, -(k + 1) | -0x80000000, k).astype(np.int32).view(np.float32)


def batchnorm_thresholds(bn_blobs, eps, thresholds):
    """Per-channel float32 thresholds tau (C, T) on the BatchNorm's *input* such
    that for every float32 x of channel c and every t = thresholds[j]:

        BN(x) > t   <=>   x > tau[c, j]

    where BN(x) = (x - mean_c) / sqrt(var_c + eps) computed in float32 as the
    BatchNorm layer computes it (global statistics). BN is non-decreasing in x
    in float arithmetic, so tau is the largest float32 with BN(tau) <= t, found
    by bisection over the ordered float32 bit patterns; the fold is exact, bit
    for bit. A quantizer whose levels change where BN(x) > t_j (HWGQ: t = 0 and
    the midpoints; sign: BN(x) >= 0, i.e. t = -smallest subnormal) then needs
    no BatchNorm at run time."""
    mean, var, s = (np.asarray(b, np.float32).ravel() for b in bn_blobs)
    f = np.float32(0) if s[0] == 0 else np.float32(1) / np.float32(s[0])
    mu = (mean * f).astype(np.float32)
    std = np.sqrt((var * f).astype(np.float32) + np.float32(eps)).astype(np.float32)
    t = np.asarray(thresholds, np.float32)[None, :]

    def bn(x):
        return (x - mu[:, None]) / std[:, None]

    lo = np.full((len(mu), t.shape[1]), _ordered(-np.finfo(np.float32).max), np.int64)
    hi = np.full_like(lo, _ordered(np.finfo(np.float32).max))
    # invariant: bn(lo) <= t < bn(hi) (extremes saturate the comparison)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        below = bn(_unordered(mid)) <= t
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return _unordered(lo)
