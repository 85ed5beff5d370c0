"""Weights between a .caffemodel and NumPy ``.npz`` or Caffe's HDF5 layout.

The ``.npz`` layout (``np.load`` needs no pickle):

    "<layer>/<i>"         param blob i of <layer>, in the blob's declared shape
                          (legacy 4-D blobs keep num x channels x height x width),
                          float32 (float64 where the caffemodel holds double_data)
    "<layer>/<i>/diff"    its diff, only where the caffemodel stores one
    "__net__"             uint8: the caffemodel's NetParameter with every blob
                          emptied (layer definitions, order, unknown fields)
    "__legacy__"          unicode array of "<layer>/<i>" keys whose blobs used
                          the legacy num/channels/height/width fields

With ``__net__`` and ``__legacy__`` present, npz -> caffemodel rebuilds the
original file byte for byte. A hand-made npz of "<layer>/<i>" arrays alone also
converts: each layer becomes a named layer holding its blobs, which is all
Caffe's ``copy_from`` matches on (layer names).

HDF5 is Caffe's ``Net::ToHDF5`` layout (see ``io.hdf5``); it holds names and
arrays only, so HDF5 -> caffemodel takes the layer definitions from a model
prototxt when one is given.
"""
import collections
import io as _io
import os

import numpy as np

from ..formats import caffemodel, hdf5, text
from ..formats.blobproto import array_to_proto, blob_array, has_legacy_dims
from ..proto import caffe_pb2

NET_KEY = "__net__"
LEGACY_KEY = "__legacy__"


def _blob_key(layer_name, i):
    return "%s/%d" % (layer_name, i)


def caffemodel_arrays(net_param):
    """OrderedDict layer name -> [arrays] of a NetParameter's blobs (layers
    without blobs are left out)."""
    out = collections.OrderedDict()
    for layer in net_param.layer:
        if len(layer.blobs):
            out[layer.name] = [blob_array(b) for b in layer.blobs]
    return out


def caffemodel_to_npz(src, dst):
    """Write ``src`` (.caffemodel, upgraded as Caffe reads it) as ``dst`` (.npz).
    Returns the number of arrays written."""
    net = caffemodel.read_net_binary(src)
    arrays = collections.OrderedDict()
    legacy = []
    for layer in net.layer:
        for i, blob in enumerate(layer.blobs):
            key = _blob_key(layer.name, i)
            if key in arrays:
                raise ValueError("%s: two layers are named '%s'" % (src, layer.name))
            arrays[key] = blob_array(blob)
            if len(blob.diff) or len(blob.double_diff):
                arrays[key + "/diff"] = blob_array(blob, diff=True)
            if has_legacy_dims(blob) and not blob.HasField("shape"):
                legacy.append(key)
        del layer.blobs[:]
    arrays[NET_KEY] = np.frombuffer(net.SerializeToString(), np.uint8)
    arrays[LEGACY_KEY] = np.array(legacy, dtype=str)
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    caffemodel.atomic_write_bytes(dst, buf.getvalue())
    return len(arrays) - 2


def _blob_proto(data, diff, legacy, proto):
    array_to_proto(data, diff, proto=proto, with_shape=not legacy)
    if legacy:
        dims = (1,) * (4 - data.ndim) + tuple(data.shape)
        proto.num, proto.channels, proto.height, proto.width = (int(d) for d in dims)
    return proto


def _npz_layers(path, d):
    """OrderedDict layer -> {index: (data, diff)} from the "<layer>/<i>" keys."""
    layers = collections.OrderedDict()
    for key in d.files:
        if key in (NET_KEY, LEGACY_KEY) or key.endswith("/diff"):
            continue
        name, _, index = key.rpartition("/")
        if not name or not index.isdigit():
            raise ValueError("%s: array '%s' is not named <layer>/<blob index>" % (path, key))
        diff = d[key + "/diff"] if key + "/diff" in d.files else None
        layers.setdefault(name, {})[int(index)] = (d[key], diff)
    for name, blobs in layers.items():
        missing = sorted(set(range(max(blobs) + 1)) - set(blobs))
        if missing:
            raise ValueError("%s: layer '%s' has no array for blob(s) %s"
                             % (path, name, ", ".join(map(str, missing))))
    return layers


def npz_to_net_param(src):
    """The NetParameter (with blobs) that ``src`` (.npz) describes."""
    src = os.fspath(src)
    with np.load(src, allow_pickle=False) as d:
        layers = _npz_layers(src, d)
        legacy = set(d[LEGACY_KEY].tolist()) if LEGACY_KEY in d.files else set()
        net = caffe_pb2.NetParameter()
        if NET_KEY in d.files:
            net.ParseFromString(d[NET_KEY].tobytes())
        by_name = {l.name: l for l in net.layer}
        for name, blobs in layers.items():
            layer = by_name.get(name)
            if layer is None:
                layer = by_name[name] = net.layer.add(name=name)
            for i in range(len(blobs)):
                data, diff = blobs[i]
                if data.dtype not in (np.float32, np.float64):
                    data = data.astype(np.float32)
                _blob_proto(data, diff, _blob_key(name, i) in legacy, layer.blobs.add())
    return net


def npz_to_caffemodel(src, dst):
    caffemodel.write_net_binary(npz_to_net_param(src), dst)


def caffemodel_to_hdf5(src, dst):
    """``src`` (.caffemodel) as Caffe's HDF5 weights: /data/<layer>/<i>, every
    layer of the file given a group (as Net::ToHDF5 does)."""
    net = caffemodel.read_net_binary(src)
    hdf5.write_weights_hdf5([(l.name, [blob_array(b) for b in l.blobs]) for l in net.layer],
                            dst)


def hdf5_to_caffemodel(src, dst, model=None):
    """Caffe HDF5 weights ``src`` as a .caffemodel. With ``model`` (a prototxt
    path), its layer definitions are kept (upgraded) and the blobs attached by
    name, as Net::ToProto writes them; layers of the file the model lacks are
    appended as bare named layers."""
    layers = hdf5.read_weights_hdf5(src)
    net = text.read_net_param(model) if model else caffe_pb2.NetParameter()
    by_name = {l.name: l for l in net.layer}
    for name, arrays in layers.items():
        layer = by_name.get(name)
        if layer is None:
            layer = by_name[name] = net.layer.add(name=name)
        del layer.blobs[:]
        for i, a in enumerate(arrays):
            if a is None:
                raise ValueError("%s: layer '%s' has no dataset %d (a shared param); a "
                                 ".caffemodel needs every blob" % (src, name, i))
            array_to_proto(np.asarray(a), proto=layer.blobs.add())
    caffemodel.write_net_binary(net, dst)
