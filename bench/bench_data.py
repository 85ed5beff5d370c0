#!/usr/bin/env python
"""Input pipeline speed: the ImageNet-shaped Data layer against official Caffe's, and
whether the pipeline keeps up with cifar10_quick.

A performance script, not a test. Default (the ImageNet shape): it writes an LMDB
of ``--records`` raw 3x256x256 Datums (as convert_imageset writes them) and one
of the same images JPEG-encoded (``convert_imageset --encoded``), and times, in
one run, a net holding only the Data layer (batch 128, crop 227, mirror, mean
values 104/117/123; TRAIN) plus a Silence layer, with ``time``:

* raw records: official Caffe's ``caffe time`` (its one prefetch thread) and
  ours with 1, 2 and the default number of workers (``--data_workers``; the
  default is the CPU count), the ratio ours / Caffe of the time per batch;
* encoded records: ours with 1, 2 and the default workers (Caffe here is built
  without OpenCV, so the bar is our own one-worker rate).

Each figure is the best of ``--repeat`` alternating runs of ``-iterations``
``--iters`` (a fresh process each). Targets (issue 28): raw ours/Caffe <= 0.8
with one worker and <= 0.4 with the default workers; encoded 2 workers >= 1.7x
the one-worker rate.

``--cifar``: the older question, does the pipeline keep up with training? On a
CIFAR-shaped LMDB: (1) the Data layer loading batches synchronously, (2) a
training iteration of cifar10_quick (the seeds' prototxt on that LMDB) and,
within it, the share of time spent in the Data layer's forward (waiting for a
batch and copying it in).

    flock /tmp/bench.lock python bench/bench_data.py            # ImageNet shape
    python bench/bench_data.py --cifar --transform "mirror: true crop_size: 28"
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

NET = os.path.join("bvlc", "examples", "cifar10", "cifar10_quick_train_test.prototxt")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cifar", action="store_true",
                   help="the cifar10_quick keep-up measurement instead of the ImageNet shape")
    p.add_argument("--iters", type=int, default=None,
                   help="timed iterations (default 40 ImageNet, 20 cifar)")
    p.add_argument("--records", type=int, default=None,
                   help="LMDB records (default 640 ImageNet, 5000 cifar)")
    p.add_argument("--repeat", type=int, default=2, help="alternating runs, best kept (2)")
    p.add_argument("--caffe", default=None, help="official Caffe's binary (default: "
                   "$REFCAFFE_HOME/caffe/build/tools/caffe)")
    p.add_argument("--prefetch", type=int, default=4, help="data_param.prefetch (default 4)")
    p.add_argument("--transform", default="",
                   help="extra transform_param fields, e.g. 'mirror: true crop_size: 28'")
    p.add_argument("--seeds", default=os.path.join(REPO, "..", "shared", "seeds"),
                   help="folder with the seed models (default ../shared/seeds)")
    return p.parse_args(argv)


def write_lmdb(folder, n, rng):
    """A CIFAR-shaped LMDB and its mean; returns (lmdb path, mean path)."""
    import numpy as np
    from pycaffe_lowbit.data import array_to_datum, open_db
    from pycaffe_lowbit.formats.caffemodel import write_blobproto
    path = os.path.join(folder, "cifar_lmdb")
    total = np.zeros((3, 32, 32))
    with open_db(path, "lmdb", "w") as db:
        for i in range(n):
            image = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
            total += image
            db.put("%05d" % i, array_to_datum(image, int(rng.integers(10))).SerializeToString())
    mean = os.path.join(folder, "mean.binaryproto")
    write_blobproto((total / n).astype(np.float32)[None], mean)
    return path, mean


def quick_net(seeds, source, mean, prefetch, transform):
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.formats.text import read_net_param, parse_text
    param = read_net_param(os.path.join(seeds, NET))
    for layer in param.layer:
        if layer.type == "Data":
            layer.data_param.source = source
            layer.data_param.prefetch = prefetch
            layer.transform_param.mean_file = mean
            if transform:
                parse_text(transform, layer.transform_param)
                layer.transform_param.mean_file = mean
    return caffe.Net(param, caffe.TRAIN)


def cifar(args):
    import numpy as np
    import pycaffe_lowbit as caffe
    caffe.set_random_seed(0)
    perf = time.perf_counter
    with tempfile.TemporaryDirectory() as folder:
        source, mean = write_lmdb(folder, args.records, np.random.default_rng(0))

        net = quick_net(args.seeds, source, mean, 0, args.transform)
        reader = net.layers[0].reader
        reader.load_batch()                                       # warm-up
        t0 = perf()
        for _ in range(args.iters):
            reader.load_batch()
        pipeline = (perf() - t0) / args.iters
        del net, reader

        net = quick_net(args.seeds, source, mean, args.prefetch, args.transform)
        batch = net.blobs["data"].shape[0]
        net.forward_backward()                                    # warm-up
        waited, total = 0.0, 0.0
        for _ in range(args.iters):
            t0 = perf()
            net.forward_from_to(0, 0)
            t1 = perf()
            net.forward_from_to(1, len(net.layers) - 1)
            net.backward_all()
            waited += t1 - t0
            total += perf() - t0
        iteration = total / args.iters
        data_share = waited / total

    print("cifar10_quick, batch %d, %d iterations, prefetch %d%s"
          % (batch, args.iters, args.prefetch,
             ", transform_param { %s }" % args.transform if args.transform else ""))
    print("  input pipeline (Data + transformer, synchronous): %8.2f ms/batch" % (1e3 * pipeline))
    print("  training iteration (forward + backward):          %8.2f ms" % (1e3 * iteration))
    print("  ratio pipeline / iteration:                        %8.3f  (< 1: keeps up)"
          % (pipeline / iteration))
    print("  Data layer forward during training:                %8.2f ms/iteration"
          " (%.1f %% of it)" % (1e3 * waited / args.iters, 100 * data_share))


def main(argv=None):
    args = parse_args(argv)
    if args.cifar:
        args.iters = args.iters or 20
        args.records = args.records or 5000
        return cifar(args)
    args.iters = args.iters or 40
    args.records = args.records or 640
    from _imagenet_data import imagenet
    return imagenet(args)


if __name__ == "__main__":
    main()
