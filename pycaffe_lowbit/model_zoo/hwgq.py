"""The HWGQ fork's model folders: ``solver.prototxt``, ``train_val.prototxt``
and ``deploy.prototxt`` each.

Solver settings and batch sizes are the fork's own: from ``seeds/hwgq`` where
the example is there (AlexNet 3ne/2n/sign, ResNet-18, CIFAR-10 VGG, LeNet),
otherwise from the fork's published example of the same name. Paths change
only to run from the repository root: ``net`` and ``snapshot_prefix`` point
into the model's folder, and the data sources the fork writes as
``../<name>`` from ``examples/<set>/<example>/`` become
``examples/<set>/<name>``. Deploy nets are made as the fork made its own
(``model.deploy_net``).
"""
from . import hwgq_deep, hwgq_nets
from .model import CIFAR10, IMAGENET, IMAGENET_227, MNIST, Model, deploy_net, set_options, \
    solver, train_command


def _solver(**fields):
    return dict(fields, momentum=0.9, lr_policy=fields.get("lr_policy", "poly"), solver_mode="GPU")


def _poly(**fields):
    return _solver(power=1.0, display=100, **fields)


STEP_160K = _solver(test_iter=1000, test_interval=1000, base_lr=0.01, lr_policy="step", gamma=0.1,
                    stepsize=50000, display=100, max_iter=160000, weight_decay=0.0005,
                    snapshot=50000)
IMAGENET_SETS = ("layer[0].data_param.source=/path/to/ilsvrc12_train_lmdb",
                 "layer[1].data_param.source=/path/to/ilsvrc12_val_lmdb")
CIFAR_SETS = ("layer[0].data_param.source=/path/to/cifar10_pad_train_lmdb",
              "layer[1].data_param.source=/path/to/cifar10_test_lmdb",
              "layer[0].transform_param.mean_file=/path/to/mean_pad.binaryproto",
              "layer[1].transform_param.mean_file=/path/to/mean.binaryproto")
MNIST_SETS = ("layer[0].data_param.source=/path/to/mnist_train_lmdb",
              "layer[1].data_param.source=/path/to/mnist_test_lmdb")
ELSEWHERE = "; the `--set` options below point elsewhere."
IMAGENET_DATA = ("ILSVRC-2012 LMDBs (BVLC's examples/imagenet/create_imagenet.sh) at the "
                 "fork's `examples/imagenet/ilsvrc12_train_lmdb` and `ilsvrc12_val_lmdb` (paths "
                 "from the repository root), %dx%d crops, mean values 104, 117, 123" + ELSEWHERE)
CIFAR_DATA = ("CIFAR-10 LMDBs as the fork makes them (its examples/cifar10/"
              "get_cifar10_pad_lmdb.sh: training images zero-padded to 40x40 and cropped to "
              "32x32 at random) at `examples/cifar10/cifar10_pad_train_lmdb` and "
              "`cifar10_test_lmdb`, with `mean_pad.binaryproto` and `mean.binaryproto` beside "
              "them" + ELSEWHERE)
MNIST_DATA = ("MNIST LMDBs (BVLC's examples/mnist/create_mnist.sh) at `examples/mnist/"
              "mnist_train_lmdb` and `mnist_test_lmdb`, pixels scaled to [0, 1]" + ELSEWHERE)
HWGQ = "binary weights, 2-bit uniform HWGQ activations (\"3ne\")"

# (folder, builder, title, example, in seeds/?, dataset, snapshot prefix, solver,
#  --set overrides, the fork's GPUs for it or None for the CPU)
SPECS = (
    ("alexnet_hwgq", lambda: hwgq_nets.alexnet("3ne"), "AlexNet, HWGQ: " + HWGQ,
     "imagenet/alex-hwgq-3ne-clip-poly-320k", True, IMAGENET_227, "alexnet",
     _poly(test_iter=1000, test_interval=1000, base_lr=0.02, max_iter=320000,
           weight_decay=0.0005, snapshot=100000), IMAGENET_SETS, "0,1"),
    ("alexnet_hwgq_2n", lambda: hwgq_nets.alexnet("2n"),
     "AlexNet, HWGQ with 2-bit non-uniform activations (\"2n\"; the paper's Table 4 ablation)",
     "imagenet/alex-hwgq-2n-clip-step-160k", True, IMAGENET_227, "alexnet", STEP_160K,
     IMAGENET_SETS, "0,1"),
    ("alexnet_bw_sign", lambda: hwgq_nets.alexnet("sign"),
     "AlexNet, BW+sign: binary weights, sign activations with the hard-tanh gradient "
     "(the paper's Table 2 ablation)",
     "imagenet/alex-sign-step-160k", True, IMAGENET_227, "alexnet", STEP_160K, IMAGENET_SETS,
     "0,1"),
    ("resnet18_hwgq", lambda: hwgq_deep.resnet(18), "ResNet-18, HWGQ: " + HWGQ,
     "imagenet/res18-hwgq-3ne-clip-poly-320k", True, IMAGENET, "resnet18",
     _poly(test_iter=2000, test_interval=2000, base_lr=0.1, max_iter=320000,
           weight_decay=0.00005, snapshot=50000), IMAGENET_SETS, "0,1,2,3"),
    ("resnet34_hwgq", lambda: hwgq_deep.resnet(34), "ResNet-34, HWGQ: " + HWGQ,
     "imagenet/res34-hwgq-3ne-clip-poly-320k", False, IMAGENET, "resnet34",
     _poly(test_iter=5000, test_interval=2000, base_lr=0.1, max_iter=320000,
           weight_decay=0.00005, snapshot=50000), IMAGENET_SETS, None),
    ("resnet50_hwgq", lambda: hwgq_deep.resnet(50), "ResNet-50, HWGQ: " + HWGQ,
     "imagenet/res50-hwgq-3ne-clip-poly-640k", False, IMAGENET, "resnet50",
     _poly(base_lr=0.1, max_iter=640000, weight_decay=0.00005, snapshot=10000),
     IMAGENET_SETS, None),
    ("vgg_variant_hwgq", lambda: hwgq_nets.vgg_variant(),
     "VGG-Variant (the HWGQ paper's ImageNet VGG), HWGQ: " + HWGQ,
     "imagenet/vgg-hwgq-3ne-clip-poly-640k", False, IMAGENET, "vggnet",
     _poly(base_lr=0.01, max_iter=640000, weight_decay=0.0005, snapshot=10000),
     IMAGENET_SETS, None),
    ("googlenet_hwgq", lambda: hwgq_deep.googlenet(),
     "GoogLeNet (BatchNorm, no auxiliary classifiers), HWGQ: " + HWGQ,
     "imagenet/google-hwgq-3ne-clip-poly-320k", False, IMAGENET, "googlenet",
     _poly(test_iter=1000, test_interval=2000, base_lr=0.1, max_iter=320000,
           weight_decay=0.00005, snapshot=50000), IMAGENET_SETS, None),
    ("darknet19_hwgq", lambda: hwgq_nets.darknet19(), "DarkNet-19, HWGQ: " + HWGQ,
     "imagenet/dark19-hwgq-3ne-clip-poly-320k", False, IMAGENET, "darknet",
     _poly(test_iter=2000, test_interval=2000, base_lr=0.1, max_iter=320000,
           weight_decay=0.00005, snapshot=50000), IMAGENET_SETS, None),
    ("cifar10_vgg_hwgq", lambda: hwgq_nets.cifar10_vgg(), "VGG for CIFAR-10, HWGQ: " + HWGQ,
     "cifar10/vgg-hwgq-3ne-clip-poly", True, CIFAR10, "vggnet",
     _solver(test_iter=100, test_interval=1000, base_lr=0.01, power=1.0, display=200,
             max_iter=100000, weight_decay=0.0005, snapshot=40000), CIFAR_SETS, "0"),
    ("lenet_hwgq", lambda: hwgq_nets.lenet(),
     "LeNet for MNIST, HWGQ: every layer binary, 2-bit uniform HWGQ activations (\"3ne\")",
     "mnist/lenet-hwgq-3ne", True, MNIST, "lenet-hwgq",
     _solver(test_iter=100, test_interval=500, base_lr=0.01, lr_policy="step", gamma=0.1,
             stepsize=500, weight_decay=0.0005, display=100, max_iter=10000, snapshot=5000),
     MNIST_SETS, None),
)


def _data_line(dataset):
    if dataset is MNIST:
        return MNIST_DATA
    if dataset is CIFAR10:
        return CIFAR_DATA
    return IMAGENET_DATA % dataset.shape[1:]


def _model(folder, build, title, example, local, dataset, prefix, settings, sets, gpus):
    net = build()
    options = set_options(sets)
    where = "examples/%s/" % example
    if local:
        origin = "mirrors the HWGQ fork's %s (seeds/hwgq)" % where
        seed = "the HWGQ fork's `%s`, mirrored layer for layer; data sources made relative " \
               "to the repository root; deploy.prototxt made from train_val as the fork makes " \
               "its own." % where
    else:
        origin = "follows the HWGQ fork's published %s (not in seeds/)" % where
        seed = "none in seeds/; follows the HWGQ fork's published `%s` (layer names, fillers, " \
               "batch sizes, solver), so its released weights load by name; deploy.prototxt " \
               "made from train_val as the fork makes its own." % where
    train = "`%s`" % train_command(folder, "solver.prototxt", options,
                                   gpu=None if dataset is MNIST else "0")
    if dataset is MNIST:
        train += " (on the CPU, as the fork's script runs it)"
    elif gpus and "," in gpus:
        train += (" (the fork's script used GPUs %s, so each step saw %d times the file's batch)"
                  % (gpus, len(gpus.split(","))))
    model = Model(folder, title, seed, dataset, _data_line(dataset), train, "hwgq",
                  sets, seed_dir=("hwgq/" + where.rstrip("/")) if local else None)
    model.add("train_val.prototxt", net, title + ": train/val net.", origin + ".")
    model.add("solver.prototxt",
              solver(net=model.path("train_val.prototxt"), snapshot_prefix=model.path(prefix),
                     **settings),
              title + ": solver (the fork's settings; paths from the repository root).")
    model.add("deploy.prototxt", deploy_net(net, dataset),
              title + ": deploy net (an Input layer, BatchNorm on "
              "its stored statistics).")
    return model


def models():
    """Every HWGQ model folder, in a fixed order."""
    return [_model(*spec) for spec in SPECS]
