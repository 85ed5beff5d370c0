"""The Stochastic Quantization fork's networks (Dong et al., BMVC 2017) in NetSpec.

Every builder takes a ``Weights``: how each convolution and inner product
holds its weights -- full precision (FWN), binary (BWN, ``BinaryConvolution``),
ternary (TWN, ``TernaryConvolution``), and for SQ-BWN/SQ-TWN ``sq: true`` with
the stage's ``ratio`` in ``convolution_param``/``inner_product_param``. As in
the fork's files, every such layer is quantized, the first convolution and the
classifier included. Layer names, tops, fillers, multipliers, BatchNorm and
data settings are the seed files' own (``seeds/sq/**``): a trained .caffemodel
of the fork loads by those names.

``resnet18`` has no seed file (the fork's README names an ImageNet ResNet-18
but the fork ships none); it is the ResNet-18 of He et al. written in the
style of the fork's AlexNet-BN and ResNet-56 files.
"""
from ..pycaffe.net_spec import L
from .model import BIAS, WEIGHT, bn_params, net_with_data

GAUSS = dict(type="gaussian", std=0.01)
MSRA = dict(type="msra")
CIFAR_MEAN = "PATH-TO-CIFAR-10(100)/mean.binaryproto"
IMAGENET_MEAN = "PATH-TO-IMAGENET/imagenet_mean.binaryproto"


class Weights:
    """Layer types and SQ fields for one method: ``kind`` is "", "Binary" or
    "Ternary"; ``ratio`` (None: no SQ) is the percentage of filters quantized
    at this stage (50, 75, 87.5, 100)."""

    def __init__(self, kind="", ratio=None):
        self.kind = kind
        self.sq = {} if ratio is None else dict(sq=True, ratio=ratio)

    def conv(self, bottom, param, **conv):
        return getattr(L, self.kind + "Convolution")(
            bottom, param=param, convolution_param=dict(conv, **self.sq))

    def ip(self, bottom, param, **inner):
        return getattr(L, self.kind + "InnerProduct")(
            bottom, param=param, inner_product_param=dict(inner, **self.sq))


def _cifar_data(scale=None, train_batch=100):
    def transform(mirror):
        out = dict(mirror=mirror, crop_size=32, mean_file=CIFAR_MEAN)
        if scale is not None:
            out["scale"] = scale
        return out
    train = dict(name="cifar", transform=transform(True),
                 source="PATH-TO-CIFAR-10(100)-TRAIN", batch_size=train_batch)
    test = dict(name="cifar", transform=transform(False),
                source="PATH-TO-CIFAR-10(100)-TEST", batch_size=100)
    return train, test


def _imagenet_data():
    train = dict(name="data", transform=dict(mirror=True, crop_size=224, mean_file=IMAGENET_MEAN),
                 source="PATH-TO-IMAGENET/ilsvrc12_train_lmdb", batch_size=256)
    test = dict(name="data", transform=dict(mirror=False, crop_size=224, mean_file=IMAGENET_MEAN),
                source="PATH-TO-IMAGENET/ilsvrc12_val_lmdb", batch_size=200)
    return train, test


def vgg9(w):
    """VGG-9 for 32x32 CIFAR: 3 x [2 x (3x3 conv, BN, Scale, ReLU), 2x2 max pool,
    dropout 0.25] (64, 128, 256 filters), 2 x (512-unit inner product, BN,
    Scale, ReLU, dropout 0.5), a 10-way classifier. (N, 3, 32, 32) -> (N, 10)."""
    def body(n, data, label):
        x = data
        for i, width in enumerate((64, 64, 128, 128, 256, 256), 1):
            conv = "conv%d" % i
            n[conv] = w.conv(x, [WEIGHT], num_output=width, pad=1, kernel_size=3, stride=1,
                             weight_filler=GAUSS, bias_term=False)
            x = _bn_scale_relu(n, conv, i)
            if i % 2 == 0:
                n["pool%d" % (i // 2)] = L.Pooling(x, pool="MAX", kernel_size=2, stride=2)
                n["drop%d" % (i // 2)] = L.Dropout(n["pool%d" % (i // 2)], dropout_ratio=0.25,
                                                   in_place=True)
                x = n["drop%d" % (i // 2)]
        for i in (7, 8):
            fc = "fc%d" % i
            n[fc] = w.ip(x, [WEIGHT], num_output=512, weight_filler=GAUSS, bias_term=False)
            x = _bn_scale_relu(n, fc, i)
            n["drop%d" % i] = L.Dropout(x, dropout_ratio=0.5, in_place=True)
            x = n["drop%d" % i]
        n.fc9 = w.ip(x, [WEIGHT, BIAS], num_output=10, weight_filler=GAUSS,
                     bias_filler=dict(type="constant", value=0.01))
        n.accuracy = L.Accuracy(n.fc9, label, include=dict(phase="TEST"))
        n.loss = L.SoftmaxWithLoss(n.fc9, label)
    train, test = _cifar_data()
    return net_with_data("CIFAR10_vgg", train, test, body)


def _bn_scale_relu(n, top, i):
    """VGG-9's BatchNorm ``bn<i>_bn`` -> ``<top>_bn``, Scale ``bn<i>_scal`` ->
    ``<top>_sc``, in-place ReLU ``relu<i>``; returns the ReLU's top."""
    n[top + "_bn"] = L.BatchNorm(n[top], name="bn%d_bn" % i)
    n[top + "_sc"] = L.Scale(n[top + "_bn"], bias_term=True, name="bn%d_scal" % i)
    n["relu%d" % i] = L.ReLU(n[top + "_sc"], in_place=True)
    return n["relu%d" % i]


def _conv_bn(n, w, name, bottom, relu, **conv):
    """ResNet-56's unit: conv ``name`` (msra, bias), in-place ``<name>_bn``
    (frozen blobs), ``<name>_scale`` and, when ``relu``, ``<name>_relu``."""
    n[name] = w.conv(bottom, [WEIGHT], weight_filler=MSRA, **conv)
    n[name + "_bn"] = L.BatchNorm(n[name], param=bn_params(), in_place=True)
    n[name + "_scale"] = L.Scale(n[name + "_bn"], bias_term=True, in_place=True)
    if not relu:
        return n[name + "_scale"]
    n[name + "_relu"] = L.ReLU(n[name + "_scale"], in_place=True)
    return n[name + "_relu"]


def resnet56(w):
    """ResNet-56 for CIFAR: a 16-filter 3x3 conv, then 3 groups of 9 blocks
    (16, 32, 64 filters; the first block of groups 1 and 2 halves the size with
    a stride-2 conv and a 2x2 stride-2 projection shortcut); a block is
    conv-BN-Scale-ReLU, conv-BN-Scale, summed with its shortcut (no ReLU after
    the sum); global average pooling, a 10-way classifier. (N, 3, 32, 32) -> (N, 10)."""
    def body(n, data, label):
        x = _conv_bn(n, w, "first_conv", data, True, num_output=16, pad=1, kernel_size=3,
                     stride=1)
        for g, width in enumerate((16, 32, 64)):
            for b in range(9):
                block = "group%d_block%d" % (g, b)
                project = g > 0 and b == 0
                y = _conv_bn(n, w, block + "_conv0", x, True, num_output=width, pad=1,
                             kernel_size=3, stride=2 if project else 1)
                y = _conv_bn(n, w, block + "_conv1", y, False, num_output=width, pad=1,
                             kernel_size=3, stride=1)
                if project:
                    short = _conv_bn(n, w, block + "_proj", x, False, num_output=width,
                                     pad=0, kernel_size=2, stride=2)
                    n[block + "_sum"] = L.Eltwise(short, y, operation="SUM")
                else:
                    n[block + "_sum"] = L.Eltwise(y, x, operation="SUM")
                x = n[block + "_sum"]
        n.global_avg_pool = L.Pooling(x, pool="AVE", global_pooling=True)
        n.fc = w.ip(n.global_avg_pool, [WEIGHT, BIAS], num_output=10, weight_filler=MSRA,
                    bias_filler=dict(type="constant", value=0))
        n.loss = L.SoftmaxWithLoss(n.fc, label)
        n.Accuracy = L.Accuracy(n.fc, label, include=dict(phase="TEST"))
    train, test = _cifar_data(scale=0.0078125, train_batch=128)
    return net_with_data("resnet9-cifar10", train, test, body)


def _imagenet_head(n, w, x, label, name):
    """The 1000-way classifier ``name`` (msra, constant-0 bias) with the loss
    and top-1/top-5 accuracy layers of the fork's AlexNet-BN."""
    n[name] = w.ip(x, [WEIGHT, BIAS], num_output=1000, weight_filler=MSRA,
                   bias_filler=dict(type="constant", value=0))
    n.loss = L.SoftmaxWithLoss(n[name], label)
    n.accuracy = L.Accuracy(n[name], label)
    n.accuracy_5 = L.Accuracy(n[name], label, top_k=5)


def alexnet_bn(w):
    """AlexNet with BatchNorm+Scale after every conv and hidden inner product
    (no biases, no groups, no LRN), 224x224 crops. (N, 3, 224, 224) -> (N, 1000)."""
    convs = ((1, dict(num_output=96, kernel_size=11, stride=4, pad=2), True),
             (2, dict(num_output=256, pad=2, kernel_size=5), True),
             (3, dict(num_output=384, pad=1, kernel_size=3), False),
             (4, dict(num_output=384, pad=1, kernel_size=3), False),
             (5, dict(num_output=256, pad=1, kernel_size=3), True))

    def body(n, data, label):
        x = data
        for i, conv, pool in convs:
            n["conv%d" % i] = w.conv(x, [WEIGHT], weight_filler=MSRA, bias_term=False, **conv)
            x = _alex_bn(n, "conv%d" % i, i)
            if pool:
                n["pool%d" % i] = L.Pooling(x, pool="MAX", kernel_size=3, stride=2)
                x = n["pool%d" % i]
        for i in (6, 7):
            n["fc%d" % i] = w.ip(x, [WEIGHT], num_output=4096, weight_filler=MSRA,
                                 bias_term=False)
            x = _alex_bn(n, "fc%d" % i, i)
            n["drop%d" % i] = L.Dropout(x, dropout_ratio=0.5, in_place=True)
            x = n["drop%d" % i]
        _imagenet_head(n, w, x, label, "fc8")
    train, test = _imagenet_data()
    return net_with_data("AlexNet-BN", train, test, body)


def _alex_bn(n, top, i):
    n["bn%d" % i] = L.BatchNorm(n[top], in_place=True)
    n["scale%d" % i] = L.Scale(n["bn%d" % i], bias_term=True, in_place=True)
    n["relu%d" % i] = L.ReLU(n["scale%d" % i], in_place=True)
    return n["relu%d" % i]


def _msra_unit(n, w, conv, suffix, bottom, relu, **param):
    """He et al.'s naming: conv ``conv``, ``bn<suffix>``, ``scale<suffix>``
    (in place, BatchNorm blobs frozen as in the fork's ResNet-56), and when
    ``relu`` an in-place ``<conv>_relu``."""
    n[conv] = w.conv(bottom, [WEIGHT], weight_filler=MSRA, bias_term=False, **param)
    n["bn" + suffix] = L.BatchNorm(n[conv], param=bn_params(), in_place=True)
    n["scale" + suffix] = L.Scale(n["bn" + suffix], bias_term=True, in_place=True)
    if not relu:
        return n["scale" + suffix]
    n[conv + "_relu"] = L.ReLU(n["scale" + suffix], in_place=True)
    return n[conv + "_relu"]


def resnet18(w):
    """ResNet-18 (He et al. 2016) for 224x224 ImageNet crops: 7x7/2 conv, 3x3/2
    max pool, 4 stages of 2 basic blocks (64, 128, 256, 512 filters; stages 3-5
    start with stride 2 and a 1x1/2 projection shortcut), ReLU after each sum,
    7x7 average pool, 1000-way classifier. (N, 3, 224, 224) -> (N, 1000)."""
    def body(n, data, label):
        x = _msra_unit(n, w, "conv1", "_conv1", data, True, num_output=64, kernel_size=7,
                       pad=3, stride=2)
        n.pool1 = L.Pooling(x, pool="MAX", kernel_size=3, stride=2)
        x = n.pool1
        for stage, width in enumerate((64, 128, 256, 512), 2):
            for letter in "ab":
                block = "%d%s" % (stage, letter)
                stride = 2 if stage > 2 and letter == "a" else 1
                short = x
                if stride == 2:
                    short = _msra_unit(n, w, "res%s_branch1" % block, "%s_branch1" % block, x,
                                       False, num_output=width, kernel_size=1, pad=0,
                                       stride=2)
                y = _msra_unit(n, w, "res%s_branch2a" % block, "%s_branch2a" % block, x, True,
                               num_output=width, kernel_size=3, pad=1, stride=stride)
                y = _msra_unit(n, w, "res%s_branch2b" % block, "%s_branch2b" % block, y,
                               False, num_output=width, kernel_size=3, pad=1, stride=1)
                n["res" + block] = L.Eltwise(short, y, operation="SUM")
                n["res%s_relu" % block] = L.ReLU(n["res" + block], in_place=True)
                x = n["res%s_relu" % block]
        n.pool5 = L.Pooling(x, pool="AVE", kernel_size=7, stride=1)
        _imagenet_head(n, w, n.pool5, label, "fc1000")
    train, test = _imagenet_data()
    return net_with_data("ResNet-18", train, test, body)
