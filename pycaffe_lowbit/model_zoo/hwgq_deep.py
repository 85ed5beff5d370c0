"""The HWGQ fork's deeper ImageNet networks in NetSpec: ResNet-18/34/50 and GoogLeNet.

Same pattern as ``hwgq_nets`` (BatchNorm + Quant in front of every binary
layer; first conv and classifier full precision). Names follow the fork's
files (``seeds/hwgq/examples/imagenet/res18-*`` and the fork's published
ResNet-34/50 and GoogLeNet definitions), so its released weights load by name.

ResNet, as the fork writes it: conv1 (7x7/2, with bias) and a 3x3/2 max pool,
then BatchNorm ``bn1`` in place. A block quantizes its input, runs its binary
branch (2a, 2b[, 2c]; BatchNorm + Quant between the convs, BatchNorm + Scale
``..._end`` after the last) and adds the shortcut in an Eltwise ``res<block>``.
The first block of a stage reads a BatchNorm applied in place to the previous
stage's output (``bn<prev block>``, quantized as ``qt<prev block>``; for stage
2, ``bn1`` and ``qt1`` / ``qt2a_branch2a``) and, where the shape changes, has a
binary 1x1 projection ``branch1`` (BatchNorm + Scale) reading the same
quantized input; the other blocks read an out-of-place BatchNorm
``bn<block>_branch2a`` of the previous sum and add that sum itself.
ResNet-50's blocks are bottlenecks (1x1, 3x3, 1x1 x4; stride on the first 1x1).
"""
from ..pycaffe.net_spec import L
from .hwgq_nets import MSRA, XAVIER, bconv, bn, classifier, imagenet_data, imagenet_head, \
    max_pool, quant
from .model import BIAS, WEIGHT, net_with_data

BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
LETTERS = "abcdef"


def _branch(n, q, block, width, stride, bottleneck, levels):
    """The binary branch ``res<block>_branch2{a,b[,c]}`` from quantized input ``q``."""
    if bottleneck:
        convs = ((width, 1, 0, stride), (width, 3, 1, 1), (4 * width, 1, 0, 1))
    else:
        convs = ((width, 3, 1, stride), (width, 3, 1, 1))
    x = q
    for j, (out, k, pad, s) in enumerate(convs):
        part = "%s_branch2%s" % (block, LETTERS[j])
        if j:
            n["bn" + part] = bn(x)
            n["qt" + part] = quant(n["bn" + part], levels)
            x = n["qt" + part]
        n["res" + part] = bconv(x, MSRA, num_output=out, kernel_size=k, pad=pad, stride=s)
        x = n["res" + part]
    n["bn%s_end" % part] = bn(x)
    n["scale%s_end" % part] = L.Scale(n["bn%s_end" % part], bias_term=True, in_place=True)
    return n["scale%s_end" % part]


def resnet(depth, levels="3ne"):
    """ResNet-``depth`` (18, 34 or 50) for 224x224 crops: ``depth`` weighted
    layers on the main path, the 7x7/2 conv and the 1000-way classifier full
    precision. (N, 3, 224, 224) -> (N, 1000)."""
    bottleneck = depth >= 50

    def body(n, data, label):
        n.conv1 = L.Convolution(data, param=[WEIGHT, BIAS], num_output=64, kernel_size=7, pad=3,
                                stride=2, weight_filler=MSRA,
                                bias_filler=dict(type="constant", value=0))
        n.pool1 = L.Pooling(n.conv1, kernel_size=3, stride=2, pool="MAX")
        n.bn1 = bn(n.pool1)
        x, prev = n.bn1, None
        for stage, count in enumerate(BLOCKS[depth], 2):
            width = 64 << (stage - 2)
            for b in range(count):
                block = "%d%s" % (stage, LETTERS[b])
                stride = 2 if stage > 2 and b == 0 else 1
                short = x
                if b == 0:
                    if prev is None:
                        qname = "qt1" if bottleneck else "qt%s_branch2a" % block
                    else:
                        n["bn" + prev] = bn(x)
                        x = short = n["bn" + prev]
                        qname = "qt" + prev
                    n[qname] = quant(x, levels)
                    q = n[qname]
                    if bottleneck or stride == 2:
                        short = _projection(n, q, block, width * (4 if bottleneck else 1), stride)
                else:
                    n["bn%s_branch2a" % block] = bn(x, in_place=False)
                    n["qt%s_branch2a" % block] = quant(n["bn%s_branch2a" % block], levels)
                    q = n["qt%s_branch2a" % block]
                y = _branch(n, q, block, width, stride, bottleneck, levels)
                n["res" + block] = L.Eltwise(short, y)
                x, prev = n["res" + block], block
        n["relu" + prev] = L.ReLU(x, in_place=True)
        n.pool5 = L.Pooling(n["relu" + prev], kernel_size=7, stride=1, pool="AVE")
        n.fc1000 = classifier(n.pool5, MSRA)
        imagenet_head(n, n.fc1000, label)
    batches = {18: (64, 25), 34: (64, 10), 50: (16, 25)}[depth]
    return net_with_data("ResNet-%d" % depth, *imagenet_data(224, *batches), body=body)


def _projection(n, q, block, out, stride):
    n["res%s_branch1" % block] = bconv(q, MSRA, num_output=out, kernel_size=1, pad=0,
                                       stride=stride)
    n["bn%s_branch1" % block] = bn(n["res%s_branch1" % block])
    n["scale%s_branch1" % block] = L.Scale(n["bn%s_branch1" % block], bias_term=True,
                                           in_place=True)
    return n["scale%s_branch1" % block]


# (name, 1x1 filters, 3x3 filters, 5x5 filters) or a 3x3/2 max pool between them.
# The fork's modules have no pool-projection branch (its filters are folded into
# the 1x1 branch) and every reduce layer has as many filters as the conv it feeds.
INCEPTION = (("3a", 96, 128, 32), ("3b", 192, 192, 96), "pool3",
             ("4a", 256, 208, 48), ("4b", 224, 224, 64), ("4c", 192, 256, 64),
             ("4d", 176, 288, 64), ("4e", 384, 320, 128), "pool4",
             ("5a", 384, 320, 128), ("5b", 512, 384, 128))


def _inception(n, x, name, w1, w3, w5, levels):
    """Module ``inception_<name>``: quantize the input once (``/qt``), then a
    1x1 branch and 1x1-reduce -> BatchNorm + Quant -> 3x3 / 5x5 branches,
    concatenated in ``/output``."""
    pre = "inception_%s/" % name
    n[pre + "qt"] = quant(x, levels)
    q = n[pre + "qt"]
    n[pre + "1x1"] = bconv(q, XAVIER, num_output=w1, kernel_size=1)
    outs = [n[pre + "1x1"]]
    for k, width in ((3, w3), (5, w5)):
        kk = "%dx%d" % (k, k)
        n[pre + kk + "_reduce"] = bconv(q, XAVIER, num_output=width, kernel_size=1)
        n[pre + "bn_%s_reduce" % kk] = bn(n[pre + kk + "_reduce"])
        n[pre + "qt_" + kk] = quant(n[pre + "bn_%s_reduce" % kk], levels)
        n[pre + kk] = bconv(n[pre + "qt_" + kk], XAVIER, num_output=width, pad=k // 2,
                            kernel_size=k)
        outs.append(n[pre + kk])
    n[pre + "output"] = L.Concat(*outs)
    return n[pre + "output"]


def googlenet(levels="3ne"):
    """The fork's GoogLeNet (Szegedy et al. 2015, BatchNorm, no auxiliary
    classifiers): a full-precision 7x7/2 conv, 3x3/2 max pool, binary
    conv2 (1x1 reduce, 3x3), 3x3/2 max pool, nine inception modules with max
    pools after 3b and 4e, BatchNorm + Scale + ReLU, 7x7 average pool and a
    full-precision classifier. (N, 3, 224, 224) -> (N, 1000)."""
    def body(n, data, label):
        n["conv1/7x7_s2"] = L.Convolution(data, param=[WEIGHT], num_output=64, pad=3,
                                          kernel_size=7, stride=2, bias_term=False,
                                          weight_filler=XAVIER)
        n["pool1/3x3_s2"] = max_pool(n["conv1/7x7_s2"], 3)
        n["pool1/bn_3x3"] = bn(n["pool1/3x3_s2"])
        n["conv2/qt_3x3_reduce"] = quant(n["pool1/bn_3x3"], levels)
        n["conv2/3x3_reduce"] = bconv(n["conv2/qt_3x3_reduce"], XAVIER, num_output=192,
                                      kernel_size=1)
        n["conv2/bn_3x3_reduce"] = bn(n["conv2/3x3_reduce"])
        n["conv2/qt_3x3"] = quant(n["conv2/bn_3x3_reduce"], levels)
        n["conv2/3x3"] = bconv(n["conv2/qt_3x3"], XAVIER, num_output=192, pad=1, kernel_size=3)
        x = n["conv2/3x3"]
        for i, item in enumerate(("pool2",) + INCEPTION):
            following = (INCEPTION + (None,))[i]
            if isinstance(item, str):
                n[item + "/3x3_s2"] = max_pool(x, 3)
                n[item + "/bn_3x3"] = bn(n[item + "/3x3_s2"])
                x = n[item + "/bn_3x3"]
                continue
            x = _inception(n, x, *item, levels)
            pre = "inception_%s/" % item[0]
            if following is None or not isinstance(following, str):
                n[pre + "bn_output"] = bn(x)
                x = n[pre + "bn_output"]
            if following is None:
                n[pre + "scale_output"] = L.Scale(x, bias_term=True, in_place=True)
                n[pre + "relu_output"] = L.ReLU(n[pre + "scale_output"], in_place=True)
                x = n[pre + "relu_output"]
        n["pool5/7x7_s1"] = L.Pooling(x, pool="AVE", kernel_size=7, stride=1)
        n.classifier = classifier(n["pool5/7x7_s1"], XAVIER)
        imagenet_head(n, n.classifier, label, loss_weight=1)
    return net_with_data("GoogleNet", *imagenet_data(224, 64, 50), body=body)
