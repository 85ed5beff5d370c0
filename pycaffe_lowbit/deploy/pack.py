"""The packed model file (``.lbpack``) and its size report.

A packed model is a NumPy ``.npz`` archive (uncompressed, no pickle):

    "format"              "lowbit-caffe-packed/1"
    "net"                 uint8: the serialized NetParameter of the deploy net
                          (plain Convolution / InnerProduct layers), blobs removed
    "<layer>/pos"         uint64 (N, ceil(k / 64)): bit j % 64 of word j // 64 of
                          row n is 1 where weight n, j is +alpha_n (little-endian)
    "<layer>/neg"         the same for -alpha_n, ternary layers only (2 bits a weight)
    "<layer>/alpha"       float32 (N,): the per-filter scale alpha_n
    "<layer>/shape"       int64: the weight blob's shape (N, C/g, kh, kw) or (N, K)
    "<layer>/<i>"         float32: every other blob as it is (biases of packed
                          layers, BatchNorm statistics, full-precision layers)

A binary layer's weight of row n, element j is alpha_n * (pos ? +1 : -1); a
ternary one's alpha_n * (pos - neg). Rows are k = prod(shape[1:]) elements,
padded with zero bits to a multiple of 64.

Which layers are packed: ``pack_net`` takes the Convolution / InnerProduct
layers whose every weight row n takes only the values {-a_n, +a_n} (binary)
or {-a_n, 0, +a_n} (ternary), i.e. exactly what the deploy conversion writes;
given ``names``, exactly those layers, each of which must be so.
"""
import io
import os

import numpy as np

from ..formats import caffemodel
from ..formats.blobproto import blob_array
from ..proto import caffe_pb2
from .packed_ops import PackedWeights

FORMAT = "lowbit-caffe-packed/1"
_PACKABLE = ("Convolution", "InnerProduct")


class PackedModel:
    """``net`` (NetParameter, no blobs), ``packed`` {layer: PackedWeights},
    ``floats`` {layer: {blob index: float32 array}} (for a packed layer: the
    blobs after its weight, i.e. the bias)."""

    def __init__(self, net, packed, floats):
        self.net, self.packed, self.floats = net, packed, floats


def quantized_signs(w):
    """(alpha (N,), s (N, k) int8) when every row of ``w`` is in {-a, 0, +a}
    (a = max |row|), else None."""
    rows = np.asarray(w, np.float32).reshape(w.shape[0], -1)
    alpha = np.abs(rows).max(axis=1)
    if not np.all((rows == 0) | (np.abs(rows) == alpha[:, None])):
        return None
    return alpha, np.sign(rows).astype(np.int8)


def pack_net(net_param, names=None):
    """A PackedModel from a NetParameter with blobs (a deploy .caffemodel's
    content, or a Net's ``to_proto()``)."""
    net = caffe_pb2.NetParameter()
    net.CopyFrom(net_param)
    wanted = None if names is None else set(names)
    packed, floats = {}, {}
    for layer in net.layer:
        arrays = [blob_array(b).astype(np.float32) for b in layer.blobs]
        del layer.blobs[:]
        if not arrays:
            continue
        q = None
        transposed = layer.type == "InnerProduct" and layer.inner_product_param.transpose
        if layer.type in _PACKABLE and not transposed and (wanted is None or layer.name in wanted):
            q = quantized_signs(arrays[0])
            if q is None and wanted is not None:
                raise ValueError("layer '%s': its weights are not alpha * {-1, 0, +1} per "
                                 "row; it cannot be packed" % layer.name)
        if q is None:
            floats[layer.name] = dict(enumerate(arrays))
            continue
        alpha, s = q
        binary_ok = not (s == 0).any()
        packed[layer.name] = PackedWeights.from_signs(alpha, s, arrays[0].shape,
                                                      ternary=not binary_ok)
        floats[layer.name] = dict(enumerate(arrays))
        del floats[layer.name][0]
    missing = (wanted or set()) - set(packed)
    if missing:
        raise ValueError("no packable layer named %s" % ", ".join(sorted(missing)))
    return PackedModel(net, packed, floats)


def save_packed(model, path):
    arrays = {"format": np.array(FORMAT),
              "net": np.frombuffer(model.net.SerializeToString(), np.uint8)}
    for name, w in model.packed.items():
        arrays[name + "/pos"] = w.pos
        if w.ternary:
            arrays[name + "/neg"] = w.neg
        arrays[name + "/alpha"] = w.alpha
        arrays[name + "/shape"] = np.array(w.shape, np.int64)
    for name, blobs in model.floats.items():
        for i, a in blobs.items():
            arrays["%s/%d" % (name, i)] = a
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    caffemodel.atomic_write_bytes(path, buf.getvalue())


def load_packed(path):
    path = os.fspath(path)
    try:
        d = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError("%s: not a packed model (%s)" % (path, e)) from None
    with d:
        if "format" not in d.files or str(d["format"]) != FORMAT:
            raise ValueError("%s: not a packed model (no format %r)" % (path, FORMAT))
        net = caffe_pb2.NetParameter()
        net.ParseFromString(d["net"].tobytes())
        packed, floats = {}, {}
        for key in d.files:
            name, _, field = key.rpartition("/")
            if field == "pos":
                shape = tuple(int(v) for v in d[name + "/shape"])
                neg = d[name + "/neg"] if name + "/neg" in d.files else None
                packed[name] = PackedWeights(d[name + "/alpha"], d[key], neg,
                                             int(np.prod(shape[1:])), shape)
            elif field.isdigit():
                floats.setdefault(name, {})[int(field)] = d[key]
    return PackedModel(net, packed, floats)


def size_report(model):
    """Rows (layer, kind, float32 bytes, packed bytes) for every layer with
    blobs, kind "binary" / "ternary" / "float"; and the totals (before, after)."""
    rows = []
    for layer in model.net.layer:
        name = layer.name
        rest = sum(a.size * 4 for a in model.floats.get(name, {}).values())
        w = model.packed.get(name)
        if w is not None:
            before = int(np.prod(w.shape)) * 4 + rest
            rows.append((name, "ternary" if w.ternary else "binary", before,
                         w.nbytes() + rest))
        elif rest:
            rows.append((name, "float", rest, rest))
    return rows, (sum(r[2] for r in rows), sum(r[3] for r in rows))


def format_size_report(model):
    rows, (before, after) = size_report(model)
    lines = ["%-20s %-8s %12s %12s %8s" % ("layer", "kind", "float32 B", "packed B", "ratio")]
    for name, kind, b, a in rows:
        lines.append("%-20s %-8s %12d %12d %7.1fx" % (name, kind, b, a, b / max(a, 1)))
    lines.append("%-20s %-8s %12d %12d %7.1fx" % ("total", "", before, after,
                                                  before / max(after, 1)))
    return "\n".join(lines)
