"""Weight-search networks and solvers (the seed's VGG-small, ResNet-20, ResNet-18).

Each net comes in FP32 (plain Convolution / InnerProduct) and in every value set
of the seed (json/valueset/), where the convolutions and inner products become
WeightSearchConvolution / WeightSearchInnerProduct; the first conv and the
classifier stay full precision unless ``quantize_first`` / ``quantize_last``.
BatchNorm (+ Scale for the affine part) and ReLU stay full precision.

    VGG-small (CIFAR-10)  conv 128, conv 128 + pool, conv 256, conv 256 + pool,
                          conv 512, conv 512 + pool (3x3, pad 1, no bias; each
                          conv [pool] -> BN -> ReLU), fc 8192 -> 10
    ResNet-20 (CIFAR-10)  conv 16 -> BN -> ReLU, 3 stages of 3 basic blocks
                          (16, 32, 64 filters), shortcut option A: x[:, :, ::2,
                          ::2] (1x1 max pooling, stride 2, floor) with zero
                          channels padded on both sides; global average pool, fc 10
    ResNet-18 (ImageNet)  torchvision's: 7x7/2 conv 64, 3x3/2 max pool, 4 stages
                          of 2 basic blocks (64..512), 1x1 conv + BN shortcuts,
                          global average pool, fc 1000

Training, from json/training/ (vggsmall-200, resnet20-200, resnet18-120): SGD
momentum 0.9, weight decay on every parameter (the logits included), cosine
learning rate to ``final_lr`` (per iteration where the seed steps per batch,
else per epoch), the temperature schedule per epoch (rate 0.97 / 0.97 / 0.95,
minimum 1e-5), hard mode, no Gumbel noise. Data: CIFAR-10 normalised by the
seed's per-channel mean and the mean of its per-channel std (a Caffe transform
has one scale); train crops 32x32 at random, mirrored, from an LMDB padded to
40x40 (= RandomCrop(32, padding=4)). ImageNet: 224 crops, mirror, the seed's
mean and mean std. (Caffe's Data layer has no RandomResizedCrop; the scale
augmentation would need a resized-crop data layer.)
"""
from .. import layers as L, params as P
from ..formats import text
from ..pycaffe.net_spec import NetSpec
from ..proto import caffe_pb2
from ..quant.weight_search import VALUE_SETS

SETS = ["fp32"] + list(VALUE_SETS) + ["int-2b", "int-3b", "int-4b"]

TRAINING = {   # the seed's json/training files
    "vgg_small": dict(lr=0.02, wd=5e-4, batch=100, epochs=200, per_batch=True, eta_min=0.0,
                      rate=0.97, train=50000, test=10000, test_batch=100),
    "resnet20": dict(lr=0.1, wd=1e-4, batch=128, epochs=200, per_batch=False, eta_min=0.001,
                     rate=0.97, train=50000, test=10000, test_batch=100),
    "resnet18": dict(lr=0.1, wd=1e-4, batch=256, epochs=120, per_batch=True, eta_min=0.0,
                     rate=0.95, train=1281167, test=50000, test_batch=50),
}
_CIFAR = dict(mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616], crop=32,
              train="examples/cifar10/cifar10_train_pad4_lmdb",
              test="examples/cifar10/cifar10_test_lmdb")
_IMAGENET = dict(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], crop=224,
                 train="examples/imagenet/ilsvrc12_train_lmdb",
                 test="examples/imagenet/ilsvrc12_val_lmdb")


class _Builder:
    """Adds layers to a NetSpec; ``quantized(first/last)`` decides each layer's type."""

    def __init__(self, value_set, iters_per_epoch, rate, quantize_first, quantize_last):
        self.n = NetSpec()
        self.value_set = value_set
        self.epoch = iters_per_epoch
        self.rate = rate
        self.quantize_first = quantize_first
        self.quantize_last = quantize_last
        self.first = True

    def _search_param(self):
        return dict(value_set=self.value_set, init_temperature=1.0,
                    temperature_decay=self.rate, temperature_step=1,
                    iters_per_epoch=self.epoch, min_temperature=1e-5)

    def conv(self, name, bottom, filters, kernel=3, stride=1, pad=1):
        spec = dict(num_output=filters, kernel_size=kernel, stride=stride, pad=pad,
                    bias_term=False, weight_filler=dict(type="msra"))
        search = self.value_set != "fp32" and (not self.first or self.quantize_first)
        self.first = False
        if search:
            self.n[name] = L.WeightSearchConvolution(
                bottom, convolution_param=spec, weight_search_param=self._search_param())
        else:
            self.n[name] = L.Convolution(bottom, convolution_param=spec)
        return self.n[name]

    def fc(self, name, bottom, outputs):
        spec = dict(num_output=outputs, weight_filler=dict(type="xavier"),
                    bias_filler=dict(type="constant"))
        if self.value_set != "fp32" and self.quantize_last:
            self.n[name] = L.WeightSearchInnerProduct(
                bottom, inner_product_param=spec, weight_search_param=self._search_param())
        else:
            self.n[name] = L.InnerProduct(bottom, inner_product_param=spec)
        return self.n[name]

    def bn(self, name, bottom, relu=True):
        n = self.n
        n[name] = L.BatchNorm(bottom, param=[dict(lr_mult=0, decay_mult=0)] * 3,
                              batch_norm_param=dict(moving_average_fraction=0.9, eps=1e-5))
        n[name + "_scale"] = L.Scale(n[name], bias_term=True, in_place=True)
        if relu:
            n[name + "_relu"] = L.ReLU(n[name], in_place=True)
        return n[name]


def _vgg_small(b, x):
    for i, (filters, pool) in enumerate([(128, False), (128, True), (256, False),
                                         (256, True), (512, False), (512, True)]):
        x = b.conv("conv%d" % i, x, filters)
        if pool:
            b.n["pool%d" % i] = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=2, stride=2)
            x = b.n["pool%d" % i]
        x = b.bn("bn%d" % i, x)
    return b.fc("fc", x, 10)


def _shortcut_a(b, name, x, planes):
    """Option A: x[:, :, ::2, ::2] with planes // 4 zero channels on each side."""
    n = b.n
    n[name + "_sub"] = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=1, stride=2,
                                 round_mode=P.Pooling.FLOOR)
    n[name + "_zero"] = L.Power(n[name + "_sub"], power=1, scale=0, shift=0)
    n[name + "_za"], n[name + "_zb"] = L.Slice(n[name + "_zero"], slice_point=[planes // 4],
                                               ntop=2)
    n[name + "_pad"] = L.Concat(n[name + "_za"], n[name + "_sub"], n[name + "_zb"])
    return n[name + "_pad"]


def _basic_block(b, name, x, planes, stride, shortcut):
    n = b.n
    y = b.conv(name + "_conv1", x, planes, stride=stride)
    y = b.bn(name + "_bn1", y)
    y = b.conv(name + "_conv2", y, planes)
    y = b.bn(name + "_bn2", y, relu=False)
    if shortcut == "A" and stride != 1:
        x = _shortcut_a(b, name, x, planes)
    elif shortcut == "B" and stride != 1:
        x = b.bn(name + "_down_bn", b.conv(name + "_down", x, planes, 1, stride, 0),
                 relu=False)
    n[name] = L.Eltwise(y, x)
    n[name + "_relu"] = L.ReLU(n[name], in_place=True)
    return n[name]


def _resnet20(b, x):
    x = b.bn("bn0", b.conv("conv0", x, 16))
    for s, planes in enumerate((16, 32, 64)):
        for i in range(3):
            stride = 2 if s > 0 and i == 0 else 1
            x = _basic_block(b, "s%d_b%d" % (s + 1, i + 1), x, planes, stride, "A")
    b.n.gpool = L.Pooling(x, pool=P.Pooling.AVE, global_pooling=True)
    return b.fc("fc", b.n.gpool, 10)


def _resnet18(b, x):
    x = b.bn("bn0", b.conv("conv0", x, 64, kernel=7, stride=2, pad=3))
    b.n.pool0 = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2, pad=1,
                          round_mode=P.Pooling.FLOOR)
    x = b.n.pool0
    for s, planes in enumerate((64, 128, 256, 512)):
        for i in range(2):
            stride = 2 if s > 0 and i == 0 else 1
            x = _basic_block(b, "s%d_b%d" % (s + 1, i + 1), x, planes, stride, "B")
    b.n.gpool = L.Pooling(x, pool=P.Pooling.AVE, global_pooling=True)
    return b.fc("fc", b.n.gpool, 1000)


ARCHS = {"vgg_small": (_vgg_small, _CIFAR), "resnet20": (_resnet20, _CIFAR),
         "resnet18": (_resnet18, _IMAGENET)}


def _data_layer(data, phase, batch, mirror, crop):
    scale = 1.0 / (255.0 * sum(data["std"]) / len(data["std"]))
    transform = dict(scale=scale, mean_value=[255.0 * m for m in data["mean"]])
    if mirror:
        transform.update(mirror=True)
    if crop:
        transform.update(crop_size=data["crop"])
    lp = caffe_pb2.LayerParameter(name="data", type="Data", top=["data", "label"])
    lp.include.add().phase = phase
    for key, value in transform.items():
        if key == "mean_value":
            lp.transform_param.mean_value.extend(value)
        else:
            setattr(lp.transform_param, key, value)
    lp.data_param.source = data["train" if phase == caffe_pb2.TRAIN else "test"]
    lp.data_param.batch_size = batch
    lp.data_param.backend = caffe_pb2.DataParameter.LMDB
    return lp


def iters_per_epoch(arch):
    t = TRAINING[arch]
    return -(-t["train"] // t["batch"])      # the seed's DataLoader keeps the last batch


def net(arch, value_set="fp32", quantize_first=False, quantize_last=False):
    """The train_val NetParameter of ``arch`` with weights searched over ``value_set``."""
    build, data = ARCHS[arch]
    t = TRAINING[arch]
    b = _Builder(value_set, iters_per_epoch(arch), t["rate"], quantize_first, quantize_last)
    b.n.data, b.n.label = L.Input(shape=[dict(dim=[1, 3, data["crop"], data["crop"]]),
                                         dict(dim=[1])], ntop=2)
    score = build(b, b.n.data)
    b.n.loss = L.SoftmaxWithLoss(score, b.n.label)
    b.n.accuracy = L.Accuracy(score, b.n.label, include=dict(phase=caffe_pb2.TEST))
    if arch == "resnet18":
        b.n.accuracy5 = L.Accuracy(score, b.n.label, accuracy_param=dict(top_k=5),
                                   include=dict(phase=caffe_pb2.TEST))
    param = b.n.to_proto()
    param.name = "%s_%s" % (arch, value_set)
    layers = [_data_layer(data, caffe_pb2.TRAIN, t["batch"], True, True),
              _data_layer(data, caffe_pb2.TEST, t["test_batch"], False, arch == "resnet18")]
    layers += list(param.layer[1:])      # drop the Input placeholder
    del param.layer[:]
    param.layer.extend(layers)
    return param


def solver(arch, net_path, prefix):
    """SGD, momentum 0.9, cosine to eta_min, the seed's epochs and weight decay."""
    t = TRAINING[arch]
    epoch = iters_per_epoch(arch)
    s = caffe_pb2.SolverParameter()
    s.net = net_path
    s.test_iter.append(-(-t["test"] // t["test_batch"]))
    s.test_interval = epoch
    s.base_lr = t["lr"]
    s.lr_policy = "cosine"
    s.final_lr = t["eta_min"]
    if not t["per_batch"]:
        s.stepsize = epoch
    s.max_iter = epoch * t["epochs"]
    s.display = 100
    s.momentum = 0.9
    s.weight_decay = t["wd"]
    s.type = "SGD"
    s.snapshot = epoch * 10
    s.snapshot_prefix = prefix
    return s


def model_args():
    """(folder under models/, arch, value set) of every shipped model."""
    return [("models/ws_%s_%s" % (arch, vs), arch, vs) for arch in ARCHS for vs in SETS]


def render():
    """{path relative to the repository: text} of every shipped weight-search model."""
    texts = {}
    for folder, arch, vs in model_args():
        net_path = folder + "/train_val.prototxt"
        texts[net_path] = text.format_text(net(arch, vs))
        texts[folder + "/solver.prototxt"] = text.format_text(
            solver(arch, net_path, "%s/%s_%s" % (folder, arch, vs)))
    return texts
