"""``lowbit-caffe test``: score a model, as ``caffe test`` does.

Runs the TEST-phase net ``-iterations`` times and prints, as Caffe's
caffe.cpp: every output value of every batch ("Batch i, name = v"), the mean
loss ("Loss: l"), then each output's mean over the batches, with its share of
the loss for weighted outputs ("loss = m (* w = w*m loss)").
"""
from ..logs.progress import iterate
from ..proto import caffe_pb2
from ..pycaffe.pycaffe import Net
from .common import Command, add_caffe_flags, load_model, use_device


def score(net, iterations, log, progress="off"):
    """Forward ``net`` ``iterations`` times; return {output: mean value(s)} and
    log Caffe's lines. Outputs with several values are scored element by element.
    ``progress``: the ``--progress`` mode of a bar over the iterations."""
    log.info("Running for %d iterations.", iterations)
    outputs = list(net.outputs)
    sums, total_loss = None, 0.0
    for i in iterate(range(iterations), progress, iterations, "test"):
        total_loss += net.forward_prefilled()
        values = []
        for name in outputs:
            flat = net.blob_by_name(name).data.reshape(-1)
            for v in flat.tolist():
                log.info("Batch %d, %s = %g", i, name, v)
                values.append((name, float(v)))
        if sums is None:
            sums = values
        else:
            sums = [(name, s + v) for (name, s), (_, v) in zip(sums, values)]
    if iterations:
        total_loss /= iterations
    log.info("Loss: %g", total_loss)
    weights = net.blob_loss_weights
    means = {}
    for name, s in sums or []:
        mean = s / iterations
        w = weights.get(name, 0.0)
        suffix = " (* %g = %g loss)" % (w, w * mean) if w else ""
        log.info("%s = %g%s", name, mean, suffix)
        means.setdefault(name, []).append(mean)
    return {name: (v[0] if len(v) == 1 else v) for name, v in means.items()}


def cmd_test(args, log):
    if not args.model:
        raise SystemExit("lowbit-caffe test: need a model definition to score (-model)")
    if not args.weights:
        raise SystemExit("lowbit-caffe test: need model weights to score (-weights)")
    use_device(args.gpu, log)
    stages = [s for s in args.stage.split(",") if s]
    net = Net(load_model(args), caffe_pb2.TEST, level=args.level, stages=stages,
              weights=args.weights)
    score(net, args.iterations, log, getattr(args, "progress", "off"))
    return 0


COMMANDS = {"test": Command(cmd_test, "score a model", add_caffe_flags)}
