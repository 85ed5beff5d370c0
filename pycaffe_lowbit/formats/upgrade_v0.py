"""V0 -> V1 net upgrade (Caffe's UpgradeV0Net): "padding" layers folded into the
``pad`` of the layer that reads them, flat V0 fields moved into typed params.

Used by ``pycaffe_lowbit.formats.upgrade``; see there for the whole upgrade order.
"""
import logging

from ..proto import caffe_pb2

log = logging.getLogger("pycaffe_lowbit")

V1 = caffe_pb2.V1LayerParameter


class UpgradeError(ValueError):
    """Where Caffe aborts an upgrade; the message names the source and layer."""


# -- V0 -> V1 --------------------------------------------------------------------

def upgrade_v0_net(net, source):
    padded = _fold_padding_layers(net, source)
    ok = True
    net.Clear()
    if padded.HasField("name"):
        net.name = padded.name
    for conn in padded.layers:
        ok &= _upgrade_v0_layer(conn, net.layers.add(), source)
    net.input.extend(padded.input)
    net.input_dim.extend(padded.input_dim)
    if padded.HasField("force_backward"):
        net.force_backward = padded.force_backward
    return ok


def _fold_padding_layers(param, source):
    """UpgradeV0PaddingLayers: drop "padding" layers, giving their pad to the
    conv/pool layer that reads their top."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layers[:]
    last_top = {name: -1 for name in param.input}
    for i, conn in enumerate(param.layers):
        ltype = conn.layer.type
        if ltype != "padding":
            out.layers.add().CopyFrom(conn)
        for j, blob in enumerate(conn.bottom):
            if blob not in last_top:
                raise UpgradeError("%s: unknown blob input '%s' to layer %d ('%s')"
                                   % (source, blob, i, conn.layer.name))
            src_idx = last_top[blob]
            if src_idx == -1:
                continue
            src = param.layers[src_idx]
            if src.layer.type != "padding":
                continue
            where = "%s: padding layer '%s' feeds layer '%s'" % (
                source, src.layer.name, conn.layer.name)
            if ltype not in ("conv", "pool"):
                raise UpgradeError("%s of type '%s'; only conv and pool layers may "
                                   "take a padding layer's output" % (where, ltype))
            if len(conn.bottom) != 1:
                raise UpgradeError("%s, which has %d bottoms (needs exactly 1)"
                                   % (where, len(conn.bottom)))
            if len(src.bottom) != 1 or len(src.top) != 1:
                raise UpgradeError("%s: a padding layer needs exactly one bottom and "
                                   "one top" % where)
            target = out.layers[len(out.layers) - 1]
            target.layer.pad = src.layer.pad
            target.bottom[j] = src.bottom[0]
        for blob in conn.top:
            last_top[blob] = i
    return out


_V0_TYPES = {
    "accuracy": V1.ACCURACY, "bnll": V1.BNLL, "concat": V1.CONCAT,
    "conv": V1.CONVOLUTION, "data": V1.DATA, "dropout": V1.DROPOUT,
    "euclidean_loss": V1.EUCLIDEAN_LOSS, "flatten": V1.FLATTEN,
    "hdf5_data": V1.HDF5_DATA, "hdf5_output": V1.HDF5_OUTPUT, "im2col": V1.IM2COL,
    "images": V1.IMAGE_DATA, "infogain_loss": V1.INFOGAIN_LOSS,
    "innerproduct": V1.INNER_PRODUCT, "lrn": V1.LRN,
    "multinomial_logistic_loss": V1.MULTINOMIAL_LOGISTIC_LOSS, "pool": V1.POOLING,
    "relu": V1.RELU, "sigmoid": V1.SIGMOID, "softmax": V1.SOFTMAX,
    "softmax_loss": V1.SOFTMAX_LOSS, "split": V1.SPLIT, "tanh": V1.TANH,
    "window_data": V1.WINDOW_DATA,
}

# V0 field -> {V0 type: (V1 sub-message, its field)}. Repeated target fields
# (conv pad/kernel_size/stride) are appended to, as Caffe's add_*.
_V0_FIELDS = (
    ("num_output", {"conv": ("convolution_param", "num_output"),
                    "innerproduct": ("inner_product_param", "num_output")}),
    ("biasterm", {"conv": ("convolution_param", "bias_term"),
                  "innerproduct": ("inner_product_param", "bias_term")}),
    ("weight_filler", {"conv": ("convolution_param", "weight_filler"),
                       "innerproduct": ("inner_product_param", "weight_filler")}),
    ("bias_filler", {"conv": ("convolution_param", "bias_filler"),
                     "innerproduct": ("inner_product_param", "bias_filler")}),
    ("pad", {"conv": ("convolution_param", "pad"), "pool": ("pooling_param", "pad")}),
    ("kernelsize", {"conv": ("convolution_param", "kernel_size"),
                    "pool": ("pooling_param", "kernel_size")}),
    ("group", {"conv": ("convolution_param", "group")}),
    ("stride", {"conv": ("convolution_param", "stride"),
                "pool": ("pooling_param", "stride")}),
    ("pool", {"pool": ("pooling_param", "pool")}),
    ("dropout_ratio", {"dropout": ("dropout_param", "dropout_ratio")}),
    ("local_size", {"lrn": ("lrn_param", "local_size")}),
    ("alpha", {"lrn": ("lrn_param", "alpha")}),
    ("beta", {"lrn": ("lrn_param", "beta")}),
    ("k", {"lrn": ("lrn_param", "k")}),
    ("source", {"data": ("data_param", "source"),
                "hdf5_data": ("hdf5_data_param", "source"),
                "images": ("image_data_param", "source"),
                "window_data": ("window_data_param", "source"),
                "infogain_loss": ("infogain_loss_param", "source")}),
    ("scale", None),         # any type -> transform_param.scale
    ("meanfile", None),      # any type -> transform_param.mean_file
    ("batchsize", {"data": ("data_param", "batch_size"),
                   "hdf5_data": ("hdf5_data_param", "batch_size"),
                   "images": ("image_data_param", "batch_size"),
                   "window_data": ("window_data_param", "batch_size")}),
    ("cropsize", None),      # any type -> transform_param.crop_size
    ("mirror", None),        # any type -> transform_param.mirror
    ("rand_skip", {"data": ("data_param", "rand_skip"),
                   "images": ("image_data_param", "rand_skip")}),
    ("shuffle_images", {"images": ("image_data_param", "shuffle")}),
    ("new_height", {"images": ("image_data_param", "new_height")}),
    ("new_width", {"images": ("image_data_param", "new_width")}),
    ("concat_dim", {"concat": ("concat_param", "concat_dim")}),
    ("det_fg_threshold", {"window_data": ("window_data_param", "fg_threshold")}),
    ("det_bg_threshold", {"window_data": ("window_data_param", "bg_threshold")}),
    ("det_fg_fraction", {"window_data": ("window_data_param", "fg_fraction")}),
    ("det_context_pad", {"window_data": ("window_data_param", "context_pad")}),
    ("det_crop_mode", {"window_data": ("window_data_param", "crop_mode")}),
    ("hdf5_output_param", {"hdf5_output": ("hdf5_output_param", None)}),
)
_V0_TRANSFORM = {"scale": "scale", "meanfile": "mean_file", "cropsize": "crop_size",
                 "mirror": "mirror"}
_UNKNOWN_PARAM_NAME = {"shuffle_images": "shuffle"}  # as Caffe's message says it


def _set(msg, field, value):
    target = getattr(msg, field)
    if hasattr(target, "append"):      # a repeated field
        target.append(value)
    elif hasattr(target, "CopyFrom"):  # a message field
        target.CopyFrom(value)
    else:
        setattr(msg, field, value)


def _upgrade_v0_layer(conn, out, source):
    """UpgradeV0LayerParameter: one V0 layer connection -> a V1 layer."""
    ok = True
    out.Clear()
    out.bottom.extend(conn.bottom)
    out.top.extend(conn.top)
    if not conn.HasField("layer"):
        return ok
    v0 = conn.layer
    if v0.HasField("name"):
        out.name = v0.name
    ltype = v0.type
    if v0.HasField("type"):
        if ltype not in _V0_TYPES:
            raise UpgradeError("%s: unknown V0 layer type '%s' (layer '%s')"
                               % (source, ltype, v0.name))
        out.type = _V0_TYPES[ltype]
    for blob in v0.blobs:
        out.blobs.add().CopyFrom(blob)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)
    for field, targets in _V0_FIELDS:
        if not v0.HasField(field):
            continue
        value = getattr(v0, field)
        if targets is None:
            _set(out.transform_param, _V0_TRANSFORM[field], value)
        elif ltype in targets:
            sub, sub_field = targets[ltype]
            if sub_field is None:
                getattr(out, sub).CopyFrom(value)
            else:
                _set(getattr(out, sub), sub_field, value)
        else:
            log.error("Unknown parameter %s for layer type %s",
                      _UNKNOWN_PARAM_NAME.get(field, field), ltype)
            ok = False
    return ok
