"""Legacy NetParameter / SolverParameter upgrades, as Caffe's util/upgrade_proto.cpp.

Every reader in ``pycaffe_lowbit.formats`` applies these, in Caffe's order:

1. V0 (``layers { layer { type: "conv" ... } }``) -> V1: "padding" layers are
   folded into the ``pad`` of the conv/pool layer that reads them, and the flat
   V0 fields move into the typed ``*_param`` messages.
2. Old data-transformation fields (``scale``, ``mean_file``, ``crop_size``,
   ``mirror`` inside data/image_data/window_data params of V1 layers) ->
   ``transform_param``.
3. V1 (``layers { type: CONVOLUTION ... }``) -> ``layer { type: "Convolution" }``:
   ``blobs_lr`` -> ``param.lr_mult``, ``weight_decay`` -> ``param.decay_mult``,
   ``param`` names and ``blob_share_mode`` -> ``param.name``/``share_mode``.
4. Top-level ``input``/``input_dim``/``input_shape`` -> one layer named
   "input" of type "Input", placed first.
5. BatchNorm layers that declare three ``param`` specs get lr_mult and
   decay_mult 0 on each (the statistics are not learned).

Where Caffe aborts (LOG(FATAL) / CHECK), we raise ``UpgradeError`` naming the
source and the layer; where Caffe logs an error and carries on, so do we.
"""
import logging
import os

from ..proto import caffe_pb2
from .upgrade_v0 import UpgradeError, upgrade_v0_net as _upgrade_v0_net  # noqa: F401

log = logging.getLogger("pycaffe_lowbit")

V1 = caffe_pb2.V1LayerParameter


# -- detection ---------------------------------------------------------------

def net_needs_v0_upgrade(net):
    return any(l.HasField("layer") for l in net.layers)


def net_needs_v1_upgrade(net):
    return len(net.layers) > 0


_DATA_TYPES = ((V1.DATA, "data_param"), (V1.IMAGE_DATA, "image_data_param"),
               (V1.WINDOW_DATA, "window_data_param"))
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def net_needs_data_upgrade(net):
    for l in net.layers:
        for v1_type, field in _DATA_TYPES:
            if l.type == v1_type:
                p = getattr(l, field)
                if any(p.HasField(f) for f in _TRANSFORM_FIELDS):
                    return True
    return False


def net_needs_input_upgrade(net):
    return len(net.input) > 0


def net_needs_batchnorm_upgrade(net):
    return any(l.type == "BatchNorm" and len(l.param) == 3 for l in net.layer)


def net_needs_upgrade(net):
    """True when any of Caffe's net upgrades would change ``net``."""
    return (net_needs_v0_upgrade(net) or net_needs_v1_upgrade(net)
            or net_needs_data_upgrade(net) or net_needs_input_upgrade(net)
            or net_needs_batchnorm_upgrade(net))


# -- the driver ----------------------------------------------------------------

def upgrade_net(net_param, source_name="<NetParameter>"):
    """An upgraded copy of ``net_param`` (Caffe's UpgradeNetAsNeeded); the
    argument is left as it is. Logs what was upgraded, as Caffe does."""
    net = caffe_pb2.NetParameter()
    net.CopyFrom(net_param)
    upgrade_net_in_place(net, source_name)
    return net


def upgrade_net_in_place(net, source_name="<NetParameter>"):
    """Upgrade ``net`` in place; returns False where Caffe reports a problem
    ("continuing anyway")."""
    success = True
    if net_needs_v0_upgrade(net):
        log.info("Attempting to upgrade input file specified using deprecated "
                 "V0LayerParameter: %s", source_name)
        if not _upgrade_v0_net(net, source_name):
            success = False
            log.error("Warning: had one or more problems upgrading V0NetParameter to "
                      "NetParameter (see above); continuing anyway.")
        else:
            log.info("Successfully upgraded file specified using deprecated "
                     "V0LayerParameter")
        log.warning("Note that future Caffe releases will not support V0NetParameter; "
                    "save the upgraded net (io.text.write_text) to convert it to the "
                    "new format.")
    if net_needs_data_upgrade(net):
        log.info("Attempting to upgrade input file specified using deprecated "
                 "transformation parameters: %s", source_name)
        _upgrade_data_transformation(net)
        log.info("Successfully upgraded file specified using deprecated data "
                 "transformation parameters.")
        log.warning("Note that future Caffe releases will only support transform_param "
                    "messages for transformation fields.")
    if net_needs_v1_upgrade(net):
        log.info("Attempting to upgrade input file specified using deprecated "
                 "V1LayerParameter: %s", source_name)
        if not _upgrade_v1_net(net, source_name):
            success = False
            log.error("Warning: had one or more problems upgrading V1LayerParameter "
                      "(see above); continuing anyway.")
        else:
            log.info("Successfully upgraded file specified using deprecated "
                     "V1LayerParameter")
    if net_needs_input_upgrade(net):
        log.info("Attempting to upgrade input file specified using deprecated input "
                 "fields: %s", source_name)
        _upgrade_net_input(net, source_name)
        log.info("Successfully upgraded file specified using deprecated input fields.")
        log.warning("Note that future Caffe releases will only support input layers "
                    "and not input fields.")
    if net_needs_batchnorm_upgrade(net):
        log.info("Attempting to upgrade batch norm layers using deprecated params: %s",
                 source_name)
        _upgrade_batchnorm(net)
        log.info("Successfully upgraded batch norm layers using deprecated params.")
    return success


# -- data transformation ----------------------------------------------------------

def _upgrade_data_transformation(net):
    for l in net.layers:
        for v1_type, field in _DATA_TYPES:
            if l.type != v1_type:
                continue
            p = getattr(l, field)
            for f in _TRANSFORM_FIELDS:
                if p.HasField(f):
                    setattr(l.transform_param, f, getattr(p, f))
                    p.ClearField(f)


# -- V1 -> V2 ---------------------------------------------------------------------

_V1_TYPE_NAMES = {
    V1.NONE: "", V1.ABSVAL: "AbsVal", V1.ACCURACY: "Accuracy", V1.ARGMAX: "ArgMax",
    V1.BNLL: "BNLL", V1.CONCAT: "Concat", V1.CONTRASTIVE_LOSS: "ContrastiveLoss",
    V1.CONVOLUTION: "Convolution", V1.DECONVOLUTION: "Deconvolution", V1.DATA: "Data",
    V1.DROPOUT: "Dropout", V1.DUMMY_DATA: "DummyData",
    V1.EUCLIDEAN_LOSS: "EuclideanLoss", V1.ELTWISE: "Eltwise", V1.EXP: "Exp",
    V1.FLATTEN: "Flatten", V1.HDF5_DATA: "HDF5Data", V1.HDF5_OUTPUT: "HDF5Output",
    V1.HINGE_LOSS: "HingeLoss", V1.IM2COL: "Im2col", V1.IMAGE_DATA: "ImageData",
    V1.INFOGAIN_LOSS: "InfogainLoss", V1.INNER_PRODUCT: "InnerProduct", V1.LRN: "LRN",
    V1.MEMORY_DATA: "MemoryData",
    V1.MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", V1.MVN: "MVN",
    V1.POOLING: "Pooling", V1.POWER: "Power", V1.RELU: "ReLU", V1.SIGMOID: "Sigmoid",
    V1.SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss", V1.SILENCE: "Silence",
    V1.SOFTMAX: "Softmax", V1.SOFTMAX_LOSS: "SoftmaxWithLoss", V1.SPLIT: "Split",
    V1.SLICE: "Slice", V1.TANH: "TanH", V1.WINDOW_DATA: "WindowData",
    V1.THRESHOLD: "Threshold",
}


def v1_layer_type_name(v1_type):
    """Caffe's UpgradeV1LayerType: the V1 enum value -> the layer type string."""
    try:
        return _V1_TYPE_NAMES[v1_type]
    except KeyError:
        raise UpgradeError("unknown V1LayerParameter layer type %r" % (v1_type,))


# The typed parameter messages UpgradeV1LayerParameter copies across.
_V1_PARAMS = (
    "accuracy_param", "argmax_param", "concat_param", "contrastive_loss_param",
    "convolution_param", "data_param", "dropout_param", "dummy_data_param",
    "eltwise_param", "exp_param", "hdf5_data_param", "hdf5_output_param",
    "hinge_loss_param", "image_data_param", "infogain_loss_param",
    "inner_product_param", "lrn_param", "memory_data_param", "mvn_param",
    "pooling_param", "power_param", "relu_param", "sigmoid_param", "softmax_param",
    "slice_param", "tanh_param", "threshold_param", "window_data_param",
    "transform_param", "loss_param",
)


def _upgrade_v1_net(net, source):
    ok = True
    if len(net.layer):
        log.error("Input NetParameter to be upgraded already specifies 'layer' fields; "
                  "these will be ignored for the upgrade.")
        ok = False
        del net.layer[:]
    for i, v1 in enumerate(net.layers):
        if not _upgrade_v1_layer(v1, net.layer.add(), source):
            log.error("Upgrade of input layer %d failed.", i)
            ok = False
    del net.layers[:]
    return ok


def _param_spec(layer, i):
    while len(layer.param) <= i:
        layer.param.add()
    return layer.param[i]


def _upgrade_v1_layer(v1, layer, source):
    """UpgradeV1LayerParameter: one V1 layer -> a LayerParameter."""
    ok = True
    layer.Clear()
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    if v1.HasField("name"):
        layer.name = v1.name
    for rule in v1.include:
        layer.include.add().CopyFrom(rule)
    for rule in v1.exclude:
        layer.exclude.add().CopyFrom(rule)
    if v1.HasField("type"):
        try:
            layer.type = v1_layer_type_name(v1.type)
        except UpgradeError as e:
            raise UpgradeError("%s: layer '%s': %s" % (source, v1.name, e))
    for blob in v1.blobs:
        layer.blobs.add().CopyFrom(blob)
    for i, name in enumerate(v1.param):
        _param_spec(layer, i).name = name
    for i, mode in enumerate(v1.blob_share_mode):
        # V1's DimCheckMode and ParamSpec's have the same names and numbers.
        _param_spec(layer, i).share_mode = mode
    for i, lr in enumerate(v1.blobs_lr):
        _param_spec(layer, i).lr_mult = lr
    for i, decay in enumerate(v1.weight_decay):
        _param_spec(layer, i).decay_mult = decay
    layer.loss_weight.extend(v1.loss_weight)
    for field in _V1_PARAMS:
        if v1.HasField(field):
            getattr(layer, field).CopyFrom(getattr(v1, field))
    if v1.HasField("layer"):
        log.error("Input NetParameter has V0 layer -- ignoring.")
        ok = False
    return ok


# -- input fields -> Input layer --------------------------------------------------

def _upgrade_net_input(net, source):
    """UpgradeNetInput: top-level inputs become a first layer "input" of type
    "Input". A net with inputs but no shapes (an old .caffemodel) just loses them."""
    has_shape, has_dim = len(net.input_shape) > 0, len(net.input_dim) > 0
    if has_shape or has_dim:
        n = len(net.input)
        if has_shape and len(net.input_shape) < n:
            raise UpgradeError("%s: %d inputs but only %d input_shape entries"
                               % (source, n, len(net.input_shape)))
        if not has_shape and len(net.input_dim) < 4 * n:
            raise UpgradeError("%s: %d inputs need %d input_dim values (4 each), "
                               "found %d" % (source, n, 4 * n, len(net.input_dim)))
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for i, name in enumerate(net.input):
            layer.top.append(name)
            shape = layer.input_param.shape.add()
            if has_shape:
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i:4 * i + 4])
        net.layer.insert(0, layer)
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")


# -- BatchNorm ------------------------------------------------------------------

def _upgrade_batchnorm(net):
    """UpgradeNetBatchNorm: a BatchNorm layer declaring three param specs (the
    old requirement) gets lr_mult = decay_mult = 0 on each; names and share
    modes stay."""
    for layer in net.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0


# -- solver -------------------------------------------------------------------------

_SOLVER_TYPE_NAMES = {
    caffe_pb2.SolverParameter.SGD: "SGD",
    caffe_pb2.SolverParameter.NESTEROV: "Nesterov",
    caffe_pb2.SolverParameter.ADAGRAD: "AdaGrad",
    caffe_pb2.SolverParameter.RMSPROP: "RMSProp",
    caffe_pb2.SolverParameter.ADADELTA: "AdaDelta",
    caffe_pb2.SolverParameter.ADAM: "Adam",
}

_INLINE_NETS = ("net_param", "train_net_param")


def solver_needs_upgrade(solver):
    return solver.HasField("solver_type") or any(
        net_needs_upgrade(n) for n in _inline_nets(solver))


def _inline_nets(solver):
    nets = [getattr(solver, f) for f in _INLINE_NETS if solver.HasField(f)]
    return nets + list(solver.test_net_param)


def upgrade_solver(solver_param, source_name="<SolverParameter>"):
    """An upgraded copy of ``solver_param``: Caffe's UpgradeSolverType (the
    legacy ``solver_type`` enum becomes the ``type`` string). Inline nets
    (``net_param``, ``train_net_param``, ``test_net_param``) are upgraded as
    nets too, which Caffe does not do (it would ignore their V1 layers)."""
    solver = caffe_pb2.SolverParameter()
    solver.CopyFrom(solver_param)
    if solver.HasField("solver_type"):
        if solver.HasField("type"):
            raise UpgradeError(
                "%s: failed to upgrade solver: old solver_type field (enum) and new "
                "type field (string) cannot be both specified" % source_name)
        solver.type = _SOLVER_TYPE_NAMES[solver.solver_type]
        solver.ClearField("solver_type")
        log.warning("%s: Note that future Caffe releases will only support 'type' "
                    "field (string) for a solver's type.", source_name)
    for net in _inline_nets(solver):
        if net_needs_upgrade(net):
            upgrade_net_in_place(net, "%s (inline net)" % source_name)
    return solver


def upgrade_snapshot_prefix(solver, param_file):
    """Caffe's UpgradeSnapshotPrefixProperty, in place: no ``snapshot_prefix``
    -> the solver file's path without its extension; a prefix naming an
    existing directory -> that directory / the solver file's stem."""
    param_file = os.fspath(param_file)
    if not solver.HasField("snapshot_prefix"):
        solver.snapshot_prefix = os.path.splitext(param_file)[0]
        log.info("snapshot_prefix was not specified and is set to %s",
                 solver.snapshot_prefix)
    elif os.path.isdir(solver.snapshot_prefix):
        stem = os.path.splitext(os.path.basename(param_file))[0]
        solver.snapshot_prefix = os.path.join(solver.snapshot_prefix, stem)
        log.info("snapshot_prefix was a directory and is replaced to %s",
                 solver.snapshot_prefix)
