"""Shared by the quantized-ONNX tests: the model zoo's nets with random
weights and calibrated BatchNorm statistics, our TEST-phase forward, and the
check that an exported quantizer gives our quantizer's output on its own input.

The check is per quantizer, fed the runtime's own input of that quantizer, so
a level flip upstream does not cascade: the runtime's output must equal our
quantizer applied to the same values, except where that input is at a tie
(our quantizer changes level within a few ulps of it: float reordering of
x / s against the fork's float32 midpoints, or QuantizeLinear's half-to-even
rounding). Those ties are counted; everything else must agree to 1e-5.
"""
import os

import numpy as np

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.net import Net, TEST
from pycaffe_lowbit.deploy.pipeline import deploy_form
from pycaffe_lowbit.formats import text
from support import paths
from support.calibration import calibrate_layer

QUANT_TYPES = ("Quant", "QNNActivation")

# name: (model file, input shape); deploy files keep their layers, a
# train_val is taken in deploy form with this input shape. Big nets at batch 1,
# spatial sizes small where the net allows (ResNet-18's 7x7 average pool needs 224).
MODELS = {
    "lenet_hwgq": ("lenet_hwgq/deploy.prototxt", (2, 1, 28, 28)),
    "alexnet_hwgq": ("alexnet_hwgq/deploy.prototxt", (1, 3, 67, 67)),
    "resnet18_hwgq": ("resnet18_hwgq/deploy.prototxt", (1, 3, 224, 224)),
    "cifar10_resnet56_sqbwn": ("cifar10_resnet56_sqbwn/deploy.prototxt", (1, 3, 8, 8)),
    "cifar10_resnet56_sqtwn": ("cifar10_resnet56_sqtwn/deploy.prototxt", (1, 3, 8, 8)),
    "qnn_cifar10_64-64-64_nb2": ("qnn_cifar10_64-64-64_nb2/train_val.prototxt", (2, 3, 32, 32)),
    "qnn_cifar10_64-64-64_nb0": ("qnn_cifar10_64-64-64_nb0/train_val.prototxt", (2, 3, 32, 32)),
    "qnn_cifar10_2x64-3x128-3x128_nb4": ("qnn_cifar10_2x64-3x128-3x128_nb4/train_val.prototxt",
                                         (1, 3, 32, 32)),
    "digits_bnn": ("digits_bnn/deploy.prototxt", (4, 1, 16, 16)),
    "ws_vgg_small_int-2b": ("ws_vgg_small_int-2b/train_val.prototxt", (1, 3, 32, 32)),
    "ws_vgg_small_po2-3b": ("ws_vgg_small_po2-3b/train_val.prototxt", (1, 3, 32, 32)),
}
SLOW = {"resnet18_hwgq", "alexnet_hwgq", "cifar10_resnet56_sqbwn", "cifar10_resnet56_sqtwn"}


def _set_input_shape(param, shape):
    if len(param.input_shape):
        del param.input_shape[0].dim[:]
        param.input_shape[0].dim.extend(shape)
        return
    for lp in param.layer:
        if lp.type == "Input":
            del lp.input_param.shape[0].dim[:]
            lp.input_param.shape[0].dim.extend(shape)
            return


def _calibrate(net, rng):
    """Random weights where the file gives none (a deploy file has no fillers:
    its weights start at 0), then BatchNorm statistics from this net's own
    pre-activations on other data (as after training, and no pre-activation
    sits exactly on 0)."""
    net.blob_by_name("data").data[...] = rng.standard_normal(net.blob_by_name("data").shape)
    for i, layer in enumerate(net.layers):
        if layer.type not in ("BatchNorm", "Scale"):
            for j, blob in enumerate(layer.blobs):
                if not np.any(blob.data):
                    fan_in = max(1, blob.count // blob.shape[0]) if j == 0 else 100
                    blob.data[...] = rng.standard_normal(blob.shape) * np.sqrt(2.0 / fan_in)
        calibrate_layer(net, i, layer, rng)
        net.forward_from_to(i, i)


def make_model(tmp_path, name, seed=0):
    """(deploy prototxt path, caffemodel path, input x) of zoo model ``name``."""
    rel, shape = MODELS[name]
    param = deploy_form(text.read_net_param(os.path.join(paths.ROOT, "models", rel)),
                        shape, source=rel)
    _set_input_shape(param, shape)
    model = str(tmp_path / (name + ".prototxt"))
    text.write_text(param, model)
    backend.set_random_seed(seed)
    net = Net(model, TEST)
    rng = np.random.default_rng(seed)
    _calibrate(net, rng)
    weights = str(tmp_path / (name + ".caffemodel"))
    net.save(weights)
    x = np.random.default_rng(seed + 1).standard_normal(shape).astype(np.float32)
    return model, weights, x


def our_forward(model, weights, x):
    """(Net, {blob: TEST output}) after one forward of x."""
    net = Net(model, TEST, weights=weights)
    net.blob_by_name("data").data[...] = x
    net.forward_prefilled()
    return net, {n: net.blob_by_name(n).data.copy() for n in net._blob_names}


def quantizer_nodes(proto, net):
    """[(layer, ONNX input value, ONNX output value)] of every activation
    quantizer: the first node written for the layer reads x, the node named
    after the layer gives y."""
    names = [layer.name for layer in net.layers]
    owner = {}
    for n in proto.graph.node:     # the longest layer name the node's name starts with
        mine = [m for m in names if n.name == m or n.name.startswith(m + "_")]
        if mine:
            owner.setdefault(max(mine, key=len), []).append(n)
    out = []
    for layer in net.layers:
        mine = owner.get(layer.name, [])
        last = [n for n in mine if n.name == layer.name]
        if layer.type in QUANT_TYPES and last:
            out.append((layer, mine[0].input[0], last[0].output[0]))
    return out


def _at_tie(quantizer, x):
    """Whether our quantizer changes level within a few ulps of x."""
    d = np.float32(8) * np.spacing(np.maximum(np.abs(x), np.float32(1))).astype(np.float32)
    lo = quantizer.forward((x - d).astype(np.float32))
    hi = quantizer.forward((x + d).astype(np.float32))
    return lo != hi


def check_quantizers(proto, net, values):
    """Each activation quantizer of the export against ours on the runtime's
    own input (``values``: ONNX value name -> array). Returns (ties, total)."""
    ties = total = 0
    for layer, x_name, y_name in quantizer_nodes(proto, net):
        x = np.asarray(values[x_name], np.float32)
        got = np.asarray(values[y_name], np.float32)
        want = layer.quantizer.forward(x.copy())
        off = ~np.isclose(got, want, rtol=1e-5, atol=1e-6)
        tie = _at_tie(layer.quantizer, x)
        assert not (off & ~tie).any(), "layer '%s': %d of %d differ away from a tie: %s vs %s" % (
            layer.name, (off & ~tie).sum(), off.size, got[off & ~tie][:5], want[off & ~tie][:5])
        ties += int(off.sum())
        total += off.size
    return ties, total


def logits(proto, net):
    """(ONNX value, our blob name) of the input of a final Softmax, or None:
    compared besides the probabilities, which a random net may saturate."""
    last = net._param.layer[-1]
    if last.type != "Softmax":
        return None
    node = [n for n in proto.graph.node if n.name == last.name and n.op_type == "Softmax"]
    return (node[0].input[0], last.bottom[0]) if node else None
