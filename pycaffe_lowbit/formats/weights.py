"""Weights between a Net and files: .caffemodel (binary NetParameter) and HDF5.

``copy_trained_layers`` is Caffe's CopyTrainedLayersFrom: source layers are
matched to the net's layers by name; a source layer the net lacks is skipped
(and logged); a matched layer must have the same number of blobs, each of the
same shape (legacy 4-D shapes compare from the end), or the error names the
layer, the blob and both shapes.
"""
import logging

from . import caffemodel, hdf5
from .blobproto import array_from_proto, proto_shape, shape_matches
from ..core import backend

log = logging.getLogger("pycaffe_lowbit")


class WeightsMismatchError(ValueError):
    pass


def _is_hdf5(path):
    return str(path).endswith(".h5")


def copy_trained_layers(net, path):
    if _is_hdf5(path):
        return load_hdf5(net, path)
    source = caffemodel.read_net_binary(path)
    layers = source.layer
    if not len(layers):
        raise WeightsMismatchError("%s: holds no layers (%s)" % (
            path, "an empty file" if not source.ByteSize() else "truncated, or not weights"))
    for src in layers:
        if src.name not in net._layer_names:
            log.info("Ignoring source layer %s", src.name)
            continue
        target = net.layer_by_name(src.name)
        if len(target.blobs) != len(src.blobs):
            raise WeightsMismatchError(
                "%s: incompatible number of blobs for layer '%s': the file has %d, "
                "the net has %d" % (path, src.name, len(src.blobs), len(target.blobs)))
        for j, (blob, proto) in enumerate(zip(target.blobs, src.blobs)):
            if not shape_matches(blob.shape, proto):
                raise WeightsMismatchError(
                    "%s: cannot copy param %d weights from layer '%s'; shape mismatch. "
                    "Source param shape is %s; target param shape is %s. To learn this "
                    "layer's parameters from scratch rather than copying from a saved "
                    "net, rename the layer." % (path, j, src.name,
                                                proto_shape(proto), blob.shape))
            values = array_from_proto(proto, shape=blob.shape)
            blob.set_values(values)


def save_hdf5(net, path):
    """Caffe's Net::ToHDF5: a group per layer under /data, a dataset per param
    the layer owns (a shared param is left out: ``None`` in its slot)."""
    owner = {pos: net._param_owner[i] for i, pos in enumerate(net._param_layer)}
    entries = []
    for layer_id, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
        arrays = [None if owner[(layer_id, k)] >= 0 else backend.to_numpy(blob.data)
                  for k, blob in enumerate(layer.blobs)]
        entries.append((name, arrays))
    hdf5.write_weights_hdf5(entries, path)


def load_hdf5(net, path):
    source = hdf5.read_weights_hdf5(path)
    for name, arrays in source.items():
        if name not in net._layer_names:
            log.info("Ignoring source layer %s", name)
            continue
        layer_id = net._layer_names.index(name)
        target = net.layers[layer_id]
        if len(arrays) > len(target.blobs):
            raise WeightsMismatchError(
                "%s: incompatible number of blobs for layer '%s': the file has %d, "
                "the net has %d" % (path, name, len(arrays), len(target.blobs)))
        for k, blob in enumerate(target.blobs):
            if k >= len(arrays) or arrays[k] is None:
                net_id = net._param_layer.index((layer_id, k))
                if net._param_owner[net_id] >= 0:
                    continue
                raise WeightsMismatchError(
                    "%s: layer '%s' has no dataset %d for its param blob %d"
                    % (path, name, k, k))
            values = arrays[k]
            if tuple(values.shape) != blob.shape:
                raise WeightsMismatchError(
                    "%s: cannot copy param %d weights from layer '%s'; shape mismatch. "
                    "Source param shape is %s; target param shape is %s"
                    % (path, k, name, tuple(values.shape), blob.shape))
            blob.set_values(values)
