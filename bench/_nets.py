"""The benchmark's nets (issue 16) and how each is prepared (bench/bench_cpu.py).

Every net is built in the TRAIN phase with its data layers swapped for Input
layers of the batch's shape (data, and a label blob of shape (batch,)), so
official Caffe and we run the same layers without an LMDB. This module does not
import numpy at import time: bench_cpu.py sets the thread variables first.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SEEDS = os.path.join(REPO, "..", "shared", "seeds")

# name: (path, "seeds" or "repo" relative, batch, input shape per item (None: the
#        file's own Input layer), kind "net" or "solver")
NETS = {
    "alexnet": ("bvlc/models/bvlc_alexnet/deploy.prototxt", "seeds", 10, None, "net"),
    "alexnet_hwgq": ("models/alexnet_hwgq/train_val.prototxt", "repo", 32, (3, 227, 227), "net"),
    "resnet56_fwn": ("sq/CIFAR/ResNet-56/FWN/train_test.prototxt", "seeds", 128, (3, 32, 32),
                     "net"),
    "resnet56_sqbwn": ("sq/CIFAR/ResNet-56/SQ-BWN/train_test_s1.prototxt", "seeds", 128,
                       (3, 32, 32), "net"),
    "cifar10_full": ("bvlc/examples/cifar10/cifar10_full_train_test.prototxt", "seeds", 100,
                     (3, 32, 32), "net"),
    "lenet_hwgq": ("models/lenet_hwgq/train_val.prototxt", "repo", 64, (1, 28, 28), "net"),
    "digits_bwn_solver": ("models/digits_bwn/solver.prototxt", "repo", None, (1, 16, 16),
                          "solver"),
}
DATA_LAYERS = {"Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "AnnotatedData",
               "DummyData"}
# Layer types of the forks (LOWBIT.md) that official Caffe does not have.
FORK_TYPES = {"BinaryConvolution", "BinaryInnerProduct", "TernaryConvolution",
              "TernaryInnerProduct", "Quant"}


def net_path(name, seeds=SEEDS):
    rel, base, *_ = NETS[name]
    return os.path.normpath(os.path.join(seeds if base == "seeds" else REPO, rel))


def _read_net(path):
    from pycaffe_lowbit.formats.text import read_net_param
    return read_net_param(path)


def load_param(name, seeds=SEEDS):
    """(NetParameter with Input layers, batch, solver parameter or None)."""
    from pycaffe_lowbit.formats.text import parse_solver_text
    rel, base, batch, item, kind = NETS[name]
    path = net_path(name, seeds)
    solver = None
    if kind == "solver":
        with open(path) as f:
            solver = parse_solver_text(f.read(), path)
        param = _read_net(os.path.join(REPO, solver.net))
        if batch is None:
            batch = train_batch(param)
    else:
        param = _read_net(path)
    swap_inputs(param, batch, item)
    return param, batch, solver


def train_batch(param):
    """batch_size of the TRAIN-phase data layer."""
    for lp in param.layer:
        if lp.type in DATA_LAYERS and any(r.phase == 0 for r in lp.include):
            return int(lp.data_param.batch_size or lp.memory_data_param.batch_size)
    raise SystemExit("no TRAIN data layer with a batch_size in %s" % param.name)


def swap_inputs(param, batch, item_shape):
    """In place: each data layer becomes an Input layer (same name, tops and
    include/exclude rules) with shapes [batch] + item_shape for the first top
    and [batch] for the others (labels); an Input layer gets batch as dim 0."""
    from pycaffe_lowbit.proto import caffe_pb2
    for lp in param.layer:
        if lp.type in DATA_LAYERS:
            if item_shape is None:
                raise SystemExit("data layer '%s' needs an input shape" % lp.name)
            keep = caffe_pb2.LayerParameter()
            keep.name = lp.name
            keep.type = "Input"
            keep.top.extend(lp.top)
            keep.include.extend(lp.include)
            keep.exclude.extend(lp.exclude)
            for k in range(len(lp.top)):
                keep.input_param.shape.add().dim.extend(
                    [batch] + list(item_shape) if k == 0 else [batch])
            lp.CopyFrom(keep)
        elif lp.type == "Input":
            for s in lp.input_param.shape:
                if len(s.dim):
                    s.dim[0] = batch
    return param


def fork_layers(param):
    """The layer types of ``param`` official Caffe cannot run (sorted)."""
    return sorted({lp.type for lp in param.layer if lp.type in FORK_TYPES})


def caffe_text(param):
    """The prototxt official Caffe reads: the same NetParameter as text."""
    from google.protobuf import text_format
    return text_format.MessageToString(param)


def fill_net(net, rng):
    """Weights: layers with all-zero weights (a deploy file has no fillers) get
    N(0, 2/fan_in) and small biases; inputs: data ~ N(0, 1), labels uniform over
    the classes of the loss layer reading them."""
    import numpy as np
    filled = []
    for layer, lp in zip(net.layers, net._param.layer):
        if "Convolution" in lp.type or "InnerProduct" in lp.type:
            if layer.blobs and not np.any(layer.blobs[0].data):
                w = layer.blobs[0]
                w.data[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / (w.count // w.shape[0]))
                for b in layer.blobs[1:]:
                    b.data[...] = rng.uniform(-0.1, 0.1, b.shape)
                filled.append(lp.name)
    classes = {}
    for i, lp in enumerate(net._param.layer):
        if lp.type in ("SoftmaxWithLoss", "Accuracy") and len(lp.bottom) > 1:
            classes[net._bottom_id_vecs[i][1]] = net._blobs[net._bottom_id_vecs[i][0]].shape[1]
    for i in range(len(net.layers) - 1, -1, -1):      # back through Split layers
        hit = [classes[k] for k in net._top_id_vecs[i] if k in classes]
        if net._param.layer[i].type == "Split" and hit:
            classes[net._bottom_id_vecs[i][0]] = hit[0]
    for i, lp in enumerate(net._param.layer):
        if lp.type != "Input":
            continue
        for k in net._top_id_vecs[i]:
            blob = net._blobs[k]
            if k in classes:
                blob.data[...] = rng.integers(0, classes[k], size=blob.shape)
            else:
                blob.data[...] = rng.standard_normal(blob.shape).astype(np.float32)
    return filled


def build(caffe, name, rng, seeds=SEEDS):
    """(net, solver or None, NetParameter, batch): ours, not yet filled (fill_net)."""
    param, batch, sparam = load_param(name, seeds)
    caffe.set_random_seed(1234)
    solver = None
    if sparam is not None:
        sparam.ClearField("net")
        sparam.net_param.CopyFrom(param)
        for field in ("test_iter", "test_net", "test_net_param", "test_state"):
            sparam.ClearField(field)
        sparam.test_interval = 0
        sparam.display = 0
        sparam.snapshot = 0
        sparam.ClearField("snapshot_prefix")
        solver = caffe.get_solver(sparam)
        net = solver.net
    else:
        net = caffe.Net(param, caffe.TRAIN)
    return net, solver, param, batch
