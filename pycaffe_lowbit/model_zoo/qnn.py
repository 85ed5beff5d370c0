"""QNN (Moons et al.) networks and solvers from the seed's command-line flags.

``python tools/qnn_model.py -ds CIFAR-10 -nb 4 -q 1 -ne 100 -nla 1 -nfa 64 -nlb 1
-nfb 64 -nlc 1 -nfc 64 -ft 0 -nl relu -sym 0 -lr 0.001 -o DIR`` writes
DIR/train_val.prototxt and DIR/solver.prototxt (the seed's train_quantized.py
flags; ``-ft 1`` needs ``--weights``). The network, as the seed builds it:

    data scaled to [-1, 1]: (x - 127.5) * 2/255 (not quantized)
    blocks A, B, C: nl x [3x3 conv, pad 1, nf filters, no bias -> BatchNorm
        (eps 1e-4, moving average 0.9 = Lasagne's alpha 0.1) + Scale (gamma,
        beta) -> activation], then 2x2 max pooling (floor)
    InnerProduct (10 classes, full precision) -> BatchNorm + Scale
    HingeLoss L2 (squared hinge on +-1 targets) with loss_weight 1/10, which is
        the seed's mean over batch and classes; Accuracy in TEST

With ``-q 1`` the convolutions are QNNConvolution (nb bits, ``symmetric`` from
-sym; their weights clipped to [-1, 1] after every update and their rate scaled
by 1/sqrt(1.5/(fan_in + fan_out))) and the activations QNNActivation (nb bits,
-nl); with ``-q 0`` plain Convolution and ReLU / Clip(-1, 1). (A bias before
BatchNorm has no effect, so the convolutions have none.) The solver: Adam
(0.9, 0.999, 1e-8), batch 64, the rate decayed per epoch from -lr to 3e-7
(``exp_decay``), -ne epochs of floor(train size / 64) iterations, a test per
epoch.
"""
import argparse

from .. import layers as L, params as P
from ..formats import text
from ..pycaffe.net_spec import NetSpec
from ..proto import caffe_pb2

DATASETS = {
    "CIFAR-10": dict(channels=3, size=32, train=50000, test=10000,
                     train_source="examples/cifar10/cifar10_train_lmdb",
                     test_source="examples/cifar10/cifar10_test_lmdb"),
    "MNIST": dict(channels=1, size=28, train=60000, test=10000,
                  train_source="examples/mnist/mnist_train_lmdb",
                  test_source="examples/mnist/mnist_test_lmdb"),
}
BATCH = 64
TEST_BATCH = 100
FINAL_LR = 3e-7


def parser():
    ap = argparse.ArgumentParser(
        prog="qnn_model", description="Write a QNN net and solver from the seed's flags.")
    ap.add_argument("-ds", default="CIFAR-10", choices=sorted(DATASETS))
    ap.add_argument("-nb", type=int, default=4, help="bits of weights and activations")
    ap.add_argument("-q", type=int, default=1, choices=(0, 1), help="1: quantized")
    ap.add_argument("-ne", type=int, default=100, help="epochs")
    ap.add_argument("-ft", type=int, default=0, choices=(0, 1), help="1: finetune --weights")
    ap.add_argument("-nl", default="relu", choices=("relu", "hardtanh"))
    ap.add_argument("-sym", type=int, default=0, choices=(0, 1))
    ap.add_argument("-lr", type=float, default=0.001)
    for block, n, f in (("a", 1, 64), ("b", 1, 64), ("c", 1, 64)):
        ap.add_argument("-nl" + block, type=int, default=n, help="layers in block " + block)
        ap.add_argument("-nf" + block, type=int, default=f, help="filters in block " + block)
    ap.add_argument("--weights", help="the model to finetune (-ft 1)")
    ap.add_argument("--name", help="the net's name")
    ap.add_argument("-o", "--out", help="output folder")
    return ap


def parse_args(argv):
    ap = parser()
    args = ap.parse_args(argv)
    if args.ft and not args.weights:
        ap.error("-ft 1 needs --weights MODEL.caffemodel")
    if args.q and args.nl == "relu" and args.nb < 1:
        ap.error("-nl relu needs -nb >= 1 (nb = 0 is BinaryNet: -nl hardtanh -sym 1)")
    return args


def blocks(args):
    """[(layers, filters)] of blocks A, B, C."""
    return [(args.nla, args.nfa), (args.nlb, args.nfb), (args.nlc, args.nfc)]


def default_name(args):
    sizes = "-".join("%dx%d" % b for b in blocks(args))
    bits = "nb%d" % args.nb if args.q else "fp"
    return "qnn_%s_%s_%s_%s" % (args.ds.lower().replace("-", ""), sizes, bits, args.nl)


def _bn(n, name, bottom):
    n[name + "_bn"] = L.BatchNorm(bottom, param=[dict(lr_mult=0)] * 3,
                                  batch_norm_param=dict(eps=1e-4, moving_average_fraction=0.9))
    n[name + "_scale"] = L.Scale(n[name + "_bn"], bias_term=True, in_place=True)
    return n[name + "_bn"]


def _activation(n, args, name, bottom):
    if args.q:
        nl = P.QNNActivation.RELU if args.nl == "relu" else P.QNNActivation.HARDTANH
        n[name] = L.QNNActivation(bottom, qnn_activation_param=dict(nb=args.nb,
                                                                    nonlinearity=nl))
    elif args.nl == "relu":
        n[name] = L.ReLU(bottom, in_place=True)
        return bottom
    else:
        n[name] = L.Clip(bottom, clip_param=dict(min=-1, max=1), in_place=True)
        return bottom
    return n[name]


def _conv(n, args, name, bottom, filters):
    spec = dict(num_output=filters, kernel_size=3, pad=1, bias_term=False,
                weight_filler=dict(type="uniform", min=-1, max=1) if args.q
                else dict(type="xavier"))
    if args.q:
        n[name] = L.QNNConvolution(
            bottom, param=[dict(lr_mult=1, clip_data=1, glorot_lr_scale=True)],
            convolution_param=spec, qnn_weight_param=dict(nb=args.nb, symmetric=bool(args.sym)))
    else:
        n[name] = L.Convolution(bottom, convolution_param=spec)
    return n[name]


def net(args, train_source=None, test_source=None):
    """The train_val NetParameter (Data layers for TRAIN and TEST)."""
    ds = DATASETS[args.ds]
    n = NetSpec()
    transform = dict(scale=2.0 / 255, mean_value=[127.5])
    n.data, n.label = L.Data(
        source=train_source or ds["train_source"], backend=P.Data.LMDB, batch_size=BATCH,
        transform_param=transform, include=dict(phase=caffe_pb2.TRAIN), ntop=2)
    x = n.data
    for b, (layers, filters) in enumerate(blocks(args)):
        for i in range(layers):
            name = "conv%s%d" % ("abc"[b], i + 1)
            x = _conv(n, args, name, x, filters)
            x = _bn(n, name, x)
            x = _activation(n, args, name + "_act", x)
        n["pool" + "abc"[b]] = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=2, stride=2,
                                         round_mode=P.Pooling.FLOOR)
        x = n["pool" + "abc"[b]]
    n.fc = L.InnerProduct(x, num_output=10, weight_filler=dict(type="xavier"))
    score = _bn(n, "fc", n.fc)
    n.loss = L.HingeLoss(score, n.label, hinge_loss_param=dict(norm=P.HingeLoss.L2),
                         loss_weight=0.1)
    n.accuracy = L.Accuracy(score, n.label, include=dict(phase=caffe_pb2.TEST))
    param = n.to_proto()
    param.name = args.name or default_name(args)
    test_data = caffe_pb2.LayerParameter()
    test_data.CopyFrom(param.layer[0])
    test_data.include[0].phase = caffe_pb2.TEST
    test_data.data_param.source = test_source or ds["test_source"]
    test_data.data_param.batch_size = TEST_BATCH
    layers = [param.layer[0], test_data] + list(param.layer[1:])
    del param.layer[:]
    param.layer.extend(layers)
    return param


def solver(args, net_path, prefix):
    """The SolverParameter: Adam, exp_decay from -lr to 3e-7 over -ne epochs."""
    ds = DATASETS[args.ds]
    epoch = ds["train"] // BATCH
    s = caffe_pb2.SolverParameter()
    s.net = net_path
    s.test_iter.append(-(-ds["test"] // TEST_BATCH))
    s.test_interval = epoch
    s.base_lr = args.lr
    s.lr_policy = "exp_decay"
    s.final_lr = FINAL_LR
    s.stepsize = epoch
    s.max_iter = epoch * args.ne
    s.display = 100
    s.type = "Adam"
    s.momentum = 0.9
    s.momentum2 = 0.999
    s.delta = 1e-8
    s.snapshot = epoch * 10
    s.snapshot_prefix = prefix
    if args.ft:
        s.weights.append(args.weights)
    return s


def files(args, folder):
    """{path: text} of the net and solver of ``args`` in ``folder``."""
    name = args.name or default_name(args)
    net_path = "%s/train_val.prototxt" % folder
    return {net_path: text.format_text(net(args)),
            "%s/solver.prototxt" % folder: text.format_text(
                solver(args, net_path, "%s/%s" % (folder, name)))}


SIZES = {"64-64-64": "-nla 1 -nfa 64 -nlb 1 -nfb 64 -nlc 1 -nfc 64",
         "2x64-3x128-3x128": "-nla 2 -nfa 64 -nlb 3 -nfb 128 -nlc 3 -nfc 128"}


def model_args():
    """(folder under models/, args) of every shipped QNN model: CIFAR-10 and
    MNIST, the two block sizes, nb = 0 (BinaryNet: hardtanh, symmetric), 2 and
    4 (relu, as the seed's 4-bit example)."""
    out = []
    for ds in ("CIFAR-10", "MNIST"):
        for size, flags in SIZES.items():
            for nb in (0, 2, 4):
                nl, sym = ("hardtanh", 1) if nb == 0 else ("relu", 0)
                argv = ("-ds %s -nb %d -q 1 -ne 100 %s -ft 0 -nl %s -sym %d -lr 0.001"
                        % (ds, nb, flags, nl, sym)).split()
                folder = "qnn_%s_%s_nb%d" % (ds.lower().replace("-", ""), size, nb)
                args = parse_args(argv)
                args.name = folder
                out.append(("models/" + folder, args))
    return out


def render():
    """{path relative to the repository: text} of every shipped QNN model."""
    texts = {}
    for folder, args in model_args():
        texts.update(files(args, folder))
    return texts
