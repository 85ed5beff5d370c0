"""The SQ fork's model folders: four networks x five methods, with solvers.

FWN, BWN and TWN train once (``solver.prototxt`` -> ``train_test.prototxt``);
SQ-BWN and SQ-TWN train in four stages (``solver_s<K>.prototxt`` ->
``train_test_s<K>.prototxt``, ratio 50, 75, 87.5, 100), each stage starting
from the previous stage's last snapshot (``seeds/SCRIPTS.md``). Solver
settings are the seed solvers' own; only their paths change (relative to the
repository root, snapshots written into the model's folder). Every folder also
gets a ``deploy.prototxt``: the (last-stage) net with an input and a softmax.
"""
from .model import CIFAR10, IMAGENET, Model, deploy_net, model_path, set_options, solver, \
    train_command
from . import sq_nets

STAGE_RATIOS = (50, 75, 87.5, 100)

# method tag -> (name in the fork, weight layer kind, staged with SQ, what it is)
METHODS = (
    ("fwn", "FWN", "", False, "full-precision weights"),
    ("bwn", "BWN", "Binary", False, "binary weights (BWN: alpha * sign per filter)"),
    ("twn", "TWN", "Ternary", False, "ternary weights (TWN)"),
    ("sqbwn", "SQ-BWN", "Binary", True,
     "binary weights learned by stochastic quantization in 4 stages (ratio 50, 75, 87.5, 100)"),
    ("sqtwn", "SQ-TWN", "Ternary", True,
     "ternary weights learned by stochastic quantization in 4 stages (ratio 50, 75, 87.5, 100)"),
)

CIFAR_SETS = ("layer[0].data_param.source=/path/to/cifar10_train_lmdb",
              "layer[1].data_param.source=/path/to/cifar10_test_lmdb",
              "layer[cifar].transform_param.mean_file=/path/to/cifar10_mean.binaryproto")
IMAGENET_SETS = ("layer[0].data_param.source=/path/to/ilsvrc12_train_lmdb",
                 "layer[1].data_param.source=/path/to/ilsvrc12_val_lmdb",
                 "layer[data].transform_param.mean_file=/path/to/imagenet_mean.binaryproto")


def _common(**fields):
    return dict(fields, display=200, momentum=0.9, snapshot=10000, solver_mode="GPU")


CIFAR_VGG_SOLVER = _common(test_iter=100, test_interval=1000, base_lr=0.1, weight_decay=0.0001,
                           lr_policy="step", gamma=0.1, stepsize=15000, max_iter=100000)
CIFAR_RESNET_SOLVER = _common(test_iter=100, test_interval=1000, base_lr=0.1, weight_decay=0.0001,
                              lr_policy="multistep", gamma=0.1, stepvalue=[32000, 48000],
                              max_iter=64000)
ALEXNET_SOLVER = _common(test_iter=250, test_interval=2000, base_lr=0.01, weight_decay=0.00005,
                         lr_policy="multistep", gamma=0.1, stepvalue=[100000, 150000, 180000],
                         max_iter=200000)
# No seed: AlexNet-BN's schedule with the learning rate and weight decay He et al. use.
RESNET18_SOLVER = dict(ALEXNET_SOLVER, base_lr=0.1, weight_decay=0.0001)

# folder stem -> (builder, what, seed folder under seeds/sq or None, dataset,
#                 snapshot prefix stem, solver, --set overrides)
ARCHS = (
    ("cifar10_vgg9", sq_nets.vgg9, "VGG-9 for CIFAR-10", "CIFAR/VGG-9", CIFAR10,
     "cifar_vgg9", CIFAR_VGG_SOLVER, CIFAR_SETS),
    ("cifar10_resnet56", sq_nets.resnet56, "ResNet-56 for CIFAR-10", "CIFAR/ResNet-56",
     CIFAR10, "cifar_resnet56", CIFAR_RESNET_SOLVER, CIFAR_SETS),
    ("alexnet_bn", sq_nets.alexnet_bn, "AlexNet-BN for ImageNet", "ImageNet/AlexNet-BN",
     IMAGENET, "alexnet", ALEXNET_SOLVER, IMAGENET_SETS),
    ("resnet18", sq_nets.resnet18, "ResNet-18 for ImageNet", None, IMAGENET,
     "resnet18", RESNET18_SOLVER, IMAGENET_SETS),
)

NO_SEED = ("The SQ fork's README names an ImageNet ResNet-18 but the fork ships no file for it: "
           "this is He et al.'s ResNet-18 written in the style of the fork's AlexNet-BN and "
           "ResNet-56 (every conv and the classifier quantized, BatchNorm + Scale after each; "
           "AlexNet-BN's data layers and schedule, base_lr 0.1, weight_decay 1e-4).")


def _model(stem, build, what, seed, dataset, prefix, settings, sets, method):
    tag, fork_name, kind, staged, about = method
    folder = "%s_%s" % (stem, tag)
    seed_dir = None if seed is None else "sq/%s/%s" % (seed, fork_name)
    snap = "%s_%s" % (prefix, fork_name.replace("-", ""))
    options = set_options(sets)
    if staged:
        train = ("`%s`, then for K = 2, 3, 4 the same with `--solver=%s --weights=%s` (each "
                 "stage fine-tunes the one before)"
                 % (train_command(folder, "solver_s1.prototxt", options),
                    model_path(folder, "solver_sK.prototxt"),
                    model_path(folder, "%s_s<K-1>_iter_%d.caffemodel"
                               % (snap, settings["max_iter"]))))
    else:
        train = "`%s`" % train_command(folder, "solver.prototxt", options)
    if seed_dir:
        origin = "mirrors the SQ fork's %s/%s/" % (seed, fork_name)
        seed_line = ("the SQ fork's `%s/%s/`, mirrored layer for layer (names, fillers, "
                     "multipliers, BatchNorm, data layers, solvers); deploy.prototxt is ours."
                     % (seed, fork_name))
    else:
        origin, seed_line = NO_SEED, "none. " + NO_SEED
    data = ("%s; the data layers keep the seed's placeholder paths (`PATH-TO-...`), which the "
            "`--set` options below replace with yours." % dataset.name)
    model = Model(folder, "%s, %s: %s" % (what, fork_name, about), seed_line, dataset, data,
                  train, "sq", sets, seed_dir=seed_dir)
    stages = list(enumerate(STAGE_RATIOS, 1)) if staged else [(None, None)]
    for k, ratio in stages:
        suffix = "" if k is None else "_s%d" % k
        stage = "" if k is None else ", stage %d of 4 (ratio %g)" % (k, ratio)
        net = build(sq_nets.Weights(kind, ratio))
        model.add("train_test%s.prototxt" % suffix, net,
                  "%s, %s%s: train/test net." % (what, fork_name, stage), origin)
        model.add("solver%s.prototxt" % suffix,
                  solver(net=model.path("train_test%s.prototxt" % suffix),
                         snapshot_prefix=model.path(snap + suffix), **settings),
                  "%s, %s%s: solver (the seed's settings; paths from the repository root)."
                  % (what, fork_name, stage))
    model.add("deploy.prototxt", deploy_net(net, dataset),
              "%s, %s: deploy net (the last train/test net with an input and a softmax)."
              % (what, fork_name))
    return model


def models():
    """Every SQ model folder, in a fixed order."""
    return [_model(*arch, method) for arch in ARCHS for method in METHODS]
