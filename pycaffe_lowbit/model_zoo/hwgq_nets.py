"""The HWGQ fork's plain networks (Cai et al., CVPR 2017) in NetSpec: AlexNet,
the CIFAR-10 VGG, LeNet, the ImageNet VGG-Variant and DarkNet-19.

The pattern (LOWBIT.md section 2): every binary layer reads a quantized
activation, made by a BatchNorm (no Scale; ``moving_average_fraction: 0.95``,
its blobs frozen with ``lr_mult: 0``) followed by a ``Quant`` layer; the
weights are binarized with a per-filter alpha (``use_alpha: true``), and
carry no bias. The first convolution and the classifier stay full precision
(LeNet: every layer binary). ``levels`` picks the activation quantizer:
"3ne" (2-bit uniform HWGQ), "2n" (2-bit non-uniform HWGQ) or "sign" (the
BW+sign ablation).

Layer names, fillers, multipliers and data settings follow the fork's own
files: ``seeds/hwgq/examples/**`` for AlexNet (all three quantizers), the
CIFAR-10 VGG and LeNet; the fork's published VGG-Variant and DarkNet-19
definitions (the VGG-Variant: He et al.'s model A, three 3x3 convs per stage
from the second stage on; DarkNet-19 as the fork has it, with 3x3 kernels in
every binary layer) for the other two, so the fork's released weights load by
name.
"""
from ..pycaffe.net_spec import L
from .model import BIAS, WEIGHT, bn_params, net_with_data

LEVELS = {
    "3ne": dict(forward_func="hwgq", backward_func="relu",
                centers=[0.538, 1.076, 1.614], clip_thr=1.614),
    "2n": dict(forward_func="hwgq", backward_func="relu", centers=[0.453, 1.51], clip_thr=1.51),
    "sign": dict(forward_func="sign", backward_func="hard_tanh", clip_thr=1.0),
}
MSRA = dict(type="msra")
XAVIER = dict(type="xavier")
GAUSS = dict(type="gaussian", std=0.01)
ZERO = dict(type="constant", value=0)
IMAGENET_MEAN = [104, 117, 123]


def bn(bottom, in_place=True):
    """The fork's BatchNorm: statistics only (no Scale), blobs frozen."""
    return L.BatchNorm(bottom, param=bn_params(decay=False), moving_average_fraction=0.95,
                       in_place=in_place)


def quant(bottom, levels):
    return L.Quant(bottom, **LEVELS[levels])


def bconv(bottom, filler, **conv):
    """A BinaryConvolution with alpha scaling and no bias."""
    return L.BinaryConvolution(bottom, param=[WEIGHT],
                               convolution_param=dict(conv, bias_term=False, weight_filler=filler),
                               binary_convolution_param=dict(use_alpha=True))


def bip(bottom, filler, **inner):
    """A BinaryInnerProduct with alpha scaling (``inner``: inner_product_param)."""
    return L.BinaryInnerProduct(bottom, param=[WEIGHT],
                                inner_product_param=dict(inner, weight_filler=filler),
                                binary_inner_product_param=dict(use_alpha=True))


def max_pool(bottom, size):
    return L.Pooling(bottom, pool="MAX", kernel_size=size, stride=2)


def classifier(bottom, filler, classes=1000):
    """The full-precision classifier: weights ``filler``, bias constant 0 (lr x2, no decay)."""
    return L.InnerProduct(bottom, param=[WEIGHT, BIAS], num_output=classes,
                          weight_filler=filler, bias_filler=ZERO)


def imagenet_head(n, logits, label, **loss):
    n.loss = L.SoftmaxWithLoss(logits, label, **loss)
    n["accuracy-top1"] = L.Accuracy(logits, label)
    n["accuracy-top5"] = L.Accuracy(logits, label, top_k=5)


def imagenet_data(crop, train_batch, test_batch):
    """The fork's ImageNet data layers, sources relative to the repository root
    (the fork's files say ``../ilsvrc12_*_lmdb`` from inside examples/imagenet/<model>/)."""
    def layer(mirror, source, batch):
        return dict(name="data", source="examples/imagenet/" + source, batch_size=batch,
                    transform=dict(crop_size=crop, mean_value=IMAGENET_MEAN, mirror=mirror))
    return (layer(True, "ilsvrc12_train_lmdb", train_batch),
            layer(False, "ilsvrc12_val_lmdb", test_batch))


def alexnet(levels):
    """AlexNet (227x227 crops, no groups, no LRN): full-precision conv1, binary
    conv2-5 and fc6-7 behind BatchNorm + Quant, BatchNorm + ReLU before the
    full-precision fc8. (N, 3, 227, 227) -> (N, 1000)."""
    def body(n, data, label):
        n.conv1 = L.Convolution(data, param=[WEIGHT], num_output=96, kernel_size=11, stride=4,
                                bias_term=False, weight_filler=GAUSS)
        n.pool1 = max_pool(n.conv1, 3)
        x = n.pool1
        for i, conv, pool in ((2, dict(num_output=256, pad=2, kernel_size=5), True),
                              (3, dict(num_output=384, pad=1, kernel_size=3), False),
                              (4, dict(num_output=384, pad=1, kernel_size=3), False),
                              (5, dict(num_output=256, pad=1, kernel_size=3), True)):
            n["bn%d" % i] = bn(x)
            n["qt%d" % i] = quant(n["bn%d" % i], levels)
            n["conv%d" % i] = bconv(n["qt%d" % i], GAUSS, **conv)
            x = n["conv%d" % i]
            if pool:
                n["pool%d" % i] = max_pool(x, 3)
                x = n["pool%d" % i]
        for i in (6, 7):
            n["bn%d" % i] = bn(x)
            n["qt%d" % i] = quant(n["bn%d" % i], levels)
            n["fc%d" % i] = bip(n["qt%d" % i], dict(type="gaussian", std=0.005),
                                num_output=4096, bias_term=False)
            x = n["fc%d" % i]
        n.bn8 = bn(x)
        n.relu8 = L.ReLU(n.bn8, in_place=True)
        n.fc8 = classifier(n.relu8, GAUSS)
        imagenet_head(n, n.fc8, label)
    return net_with_data("CaffeNet", *imagenet_data(227, 128, 50), body=body)


def cifar10_vgg(levels="3ne"):
    """The fork's CIFAR-10 VGG: conv1_1 full precision, five binary 3x3 convs
    (128, 256, 256, 512, 512) each behind BatchNorm + Quant, 2x2 max pools after
    conv1_2, conv2_2 and (after BatchNorm, Scale, ReLU) conv3_2, a 10-way
    full-precision classifier. Trains on 40x40 padded images cropped to 32x32.
    (N, 3, 32, 32) -> (N, 10)."""
    def body(n, data, label):
        n.conv1_1 = L.Convolution(data, param=[WEIGHT], num_output=128, pad=1, kernel_size=3,
                                  stride=1, bias_term=False, weight_filler=MSRA)
        x = n.conv1_1
        for tag, width, pool in (("1_2", 128, None), ("2_1", 256, "pool1"), ("2_2", 256, None),
                                 ("3_1", 512, "pool2"), ("3_2", 512, None)):
            if pool:
                n[pool] = max_pool(x, 2)
                x = n[pool]
            n["bn" + tag] = bn(x)
            n["qt" + tag] = quant(n["bn" + tag], levels)
            n["conv" + tag] = bconv(n["qt" + tag], MSRA, num_output=width, pad=1,
                                    kernel_size=3, stride=1)
            x = n["conv" + tag]
        n.bn3 = bn(x)
        n.scale3 = L.Scale(n.bn3, bias_term=True, in_place=True)
        n.relu3 = L.ReLU(n.scale3, in_place=True)
        n.pool3 = max_pool(n.relu3, 2)
        n.fc4 = L.InnerProduct(n.pool3, param=[WEIGHT, BIAS], num_output=10, weight_filler=MSRA,
                               bias_filler=dict(type="constant"))
        n.accuracy = L.Accuracy(n.fc4, label)
        n.loss = L.SoftmaxWithLoss(n.fc4, label)
    train = dict(name="cifar", source="examples/cifar10/cifar10_pad_train_lmdb", batch_size=100,
                 transform=dict(crop_size=32, mirror=True,
                                mean_file="examples/cifar10/mean_pad.binaryproto"))
    test = dict(name="cifar", source="examples/cifar10/cifar10_test_lmdb", batch_size=100,
                transform=dict(mirror=False, mean_file="examples/cifar10/mean.binaryproto"))
    return net_with_data("CIFAR10", train, test, body)


def lenet(levels="3ne"):
    """LeNet with every layer binary: conv1 (20 5x5) reads the raw [0, 1]
    pixels; conv2 (50 5x5), ip1 (500) and ip2 (10) each read BatchNorm + Quant
    of the pooled or inner-product output. (N, 1, 28, 28) -> (N, 10)."""
    small = dict(type="gaussian", std=0.005)

    def body(n, data, label):
        n.conv1 = bconv(data, GAUSS, num_output=20, kernel_size=5)
        n.pool1 = max_pool(n.conv1, 2)
        n.bn1 = bn(n.pool1)
        n.qt1 = quant(n.bn1, levels)
        n.conv2 = bconv(n.qt1, GAUSS, num_output=50, kernel_size=5)
        n.pool2 = max_pool(n.conv2, 2)
        n.bn2 = bn(n.pool2)
        n.qt2 = quant(n.bn2, levels)
        n.ip1 = bip(n.qt2, small, num_output=500, bias_term=False)
        n.bn3 = bn(n.ip1)
        n.qt3 = quant(n.bn3, levels)
        n.ip2 = bip(n.qt3, small, num_output=10, bias_filler=ZERO)
        n.accuracy = L.Accuracy(n.ip2, label, include=dict(phase="TEST"))
        n.loss = L.SoftmaxWithLoss(n.ip2, label)

    def layer(source, batch):
        return dict(name="mnist", source="examples/mnist/" + source, batch_size=batch,
                    transform=dict(scale=0.00390625))
    return net_with_data("LeNet-HWGQ", layer("mnist_train_lmdb", 64),
                         layer("mnist_test_lmdb", 100), body)


def _binary_stages(n, x, prev, stages, levels, pool_last=True):
    """Stages of binary 3x3 convs, each stage closed by a 2x2/2 max pool
    (the last one only when ``pool_last``). ``stages``: (stage number, widths);
    a conv is ``conv<s>_<i>`` (``conv<s>`` when its stage has one), read through
    ``qt<same tag>``, behind a BatchNorm named after the conv before it
    (``bn<prev>``, in place on that conv or on the pool after it). ``x``/``prev``:
    the input and the tag of the conv it came from. Returns the new (x, prev)."""
    for index, (stage, widths) in enumerate(stages):
        for i, width in enumerate(widths, 1):
            tag = "%d_%d" % (stage, i) if len(widths) > 1 else "%d" % stage
            n["bn" + prev] = bn(x)
            n["qt" + tag] = quant(n["bn" + prev], levels)
            n["conv" + tag] = bconv(n["qt" + tag], MSRA, num_output=width, pad=1, kernel_size=3)
            x, prev = n["conv" + tag], tag
        if pool_last or index < len(stages) - 1:
            n["pool%d" % stage] = max_pool(x, 2)
            x = n["pool%d" % stage]
    return x, prev


def vgg_variant(levels="3ne"):
    """The HWGQ paper's VGG-Variant: a full-precision 7x7/2 conv (96) with ReLU,
    then 3 stages of three binary 3x3 convs (256, 512, 512), each closed by a
    2x2 max pool, two binary 4096-unit inner products, BatchNorm + ReLU and a
    full-precision classifier. (N, 3, 224, 224) -> (N, 1000)."""
    def body(n, data, label):
        n.conv1 = L.Convolution(data, param=[WEIGHT], num_output=96, pad=3, kernel_size=7,
                                stride=2, bias_term=False, weight_filler=MSRA)
        n.relu1 = L.ReLU(n.conv1, in_place=True)
        n.pool1 = max_pool(n.relu1, 2)
        x, prev = _binary_stages(n, n.pool1, "1", ((2, (256,) * 3), (3, (512,) * 3),
                                                   (4, (512,) * 3)), levels)
        for i in (5, 6):
            n["bn" + prev] = bn(x)
            n["qt%d" % i] = quant(n["bn" + prev], levels)
            n["fc%d" % i] = bip(n["qt%d" % i], MSRA, num_output=4096, bias_term=False)
            x, prev = n["fc%d" % i], "%d" % i
        n.bn6 = bn(x)
        n.relu6 = L.ReLU(n.bn6, in_place=True)
        n.fc7 = classifier(n.relu6, MSRA)
        imagenet_head(n, n.fc7, label)
    return net_with_data("VGG", *imagenet_data(224, 64, 25), body=body)


def darknet19(levels="3ne"):
    """DarkNet-19 as the HWGQ fork trains it: a full-precision 3x3 conv (32),
    then binary 3x3 convs in stages of 1, 1, 3, 3, 5, 5 (64; 128-64-128;
    256-128-256; 512-256-...; 1024-512-...), 2x2 max pools between stages,
    BatchNorm + Scale + ReLU, 7x7 average pool and a full-precision classifier.
    (N, 3, 224, 224) -> (N, 1000)."""
    def body(n, data, label):
        n.conv1 = L.Convolution(data, param=[WEIGHT], num_output=32, pad=1, kernel_size=3,
                                bias_term=False, weight_filler=MSRA)
        n.pool1 = max_pool(n.conv1, 2)
        x, prev = _binary_stages(n, n.pool1, "1", (
            (2, (64,)), (3, (128, 64, 128)), (4, (256, 128, 256)),
            (5, (512, 256, 512, 256, 512)), (6, (1024, 512, 1024, 512, 1024))),
            levels, pool_last=False)
        n["bn" + prev] = bn(x)
        n["scale" + prev] = L.Scale(n["bn" + prev], bias_term=True, in_place=True)
        n["relu" + prev] = L.ReLU(n["scale" + prev], in_place=True)
        n.pool6 = L.Pooling(n["relu" + prev], kernel_size=7, stride=1, pool="AVE")
        n.fc7 = classifier(n.pool6, MSRA)
        imagenet_head(n, n.fc7, label)
    return net_with_data("DarkNet", *imagenet_data(224, 64, 25), body=body)
