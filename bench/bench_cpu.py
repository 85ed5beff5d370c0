#!/usr/bin/env python
"""CPU forward+backward timing of pycaffe_lowbit, beside official Caffe and PyTorch.

A performance script, not a test. For each net it measures what ``caffe time``
measures: every layer's forward, then every layer's backward (with Caffe's
``bottom_need_backward``), one warm-up iteration, then N timed iterations
(best and mean). Official Caffe's figures come from ../shared/golden/PERF.md
(same machine kind, 1 OpenBLAS thread). PyTorch runs the same net, built from
our Net's layers with our weights (bench/_torch_port.py), in the same process.

    python bench/bench_cpu.py                       # all three nets, 1 thread
    python bench/bench_cpu.py --nets cifar10_full --iters 5 --layers 20
    python bench/bench_cpu.py --threads 2 --no-torch

See bench/README.md.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# name: (file under the seeds folder, batch, input shape per item or None for the
#        file's own Input layer, official Caffe's ms from PERF.md)
NETS = {
    "alexnet": ("bvlc/models/bvlc_alexnet/deploy.prototxt", 10, None, 935.0),
    "resnet56": ("sq/CIFAR/ResNet-56/FWN/train_test.prototxt", 128, (3, 32, 32), 5000.0),
    "cifar10_full": ("bvlc/examples/cifar10/cifar10_full_train_test.prototxt", 100,
                     (3, 32, 32), 275.0),
}
DATA_LAYERS = {"Data", "ImageData", "HDF5Data", "WindowData", "MemoryData", "AnnotatedData"}
TORCH_HINT = ("PyTorch is not installed, so the PyTorch columns are empty. For them: "
              "pip install torch==2.13.0  (CPU wheel; on this project's machines: "
              "pip install --find-links /opt/wheels torch==2.13.0). It is a benchmark "
              "aid only, never a dependency of pycaffe_lowbit.")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(NETS),
                   help="comma-separated subset of: %s (default: all)" % ", ".join(NETS))
    p.add_argument("--iters", type=int, default=3, help="timed iterations (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads (default 1, as PERF.md)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--layers", nargs="?", type=int, const=15, default=0, metavar="K",
                   help="print the K slowest layers of ours (forward/backward ms; "
                        "default K=15) and the time per layer type")
    p.add_argument("--seeds", default=os.path.join(REPO, "..", "shared", "seeds"),
                   help="folder with the seed models (default ../shared/seeds)")
    p.add_argument("--seed", type=int, default=0, help="random seed for weights and inputs")
    args = p.parse_args(argv)
    args.nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    bad = [n for n in args.nets if n not in NETS]
    if bad:
        p.error("unknown net(s) %s; choose from %s" % (", ".join(bad), ", ".join(NETS)))
    if args.iters < 1:
        p.error("--iters must be >= 1")
    return args


def set_threads(n):
    """Must run before numpy (and torch) are imported."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(n)


# --------------------------------------------------------------------------------
def build_net(caffe, spec, seeds, rng):
    """Our Net in TRAIN phase, data layers replaced by Input; inputs filled."""
    import numpy as np
    from google.protobuf import text_format
    from pycaffe_lowbit.proto import caffe_pb2
    rel, batch, item_shape, _ = spec
    path = os.path.join(seeds, rel)
    try:
        from pycaffe_lowbit.io.text import read_net_param
        param = read_net_param(path)
    except ImportError:
        param = caffe_pb2.NetParameter()
        with open(path) as f:
            text_format.Merge(f.read(), param)
    for lp in param.layer:
        if lp.type in DATA_LAYERS:
            if item_shape is None:
                raise SystemExit("%s: data layer '%s' needs an input shape" % (rel, lp.name))
            tops = list(lp.top)
            keep = caffe_pb2.LayerParameter()
            keep.name = lp.name
            keep.type = "Input"
            keep.top.extend(tops)
            keep.include.extend(lp.include)
            keep.exclude.extend(lp.exclude)
            for k in range(len(tops)):
                keep.input_param.shape.add().dim.extend(
                    [batch] + list(item_shape) if k == 0 else [batch])
            lp.CopyFrom(keep)
        elif lp.type == "Input":
            for s in lp.input_param.shape:
                if len(s.dim):
                    s.dim[0] = batch
    caffe.set_random_seed(1234)
    net = caffe.Net(param, caffe.TRAIN)
    # A deploy file has no fillers (all-zero weights, so any agreement check would
    # pass trivially): draw He-scaled weights and small biases for such layers.
    filled = []
    for layer, lp in zip(net.layers, net._param.layer):
        if lp.type in ("Convolution", "Deconvolution", "InnerProduct") and layer.blobs \
                and not np.any(layer.blobs[0].data):
            w = layer.blobs[0]
            fan_in = w.count // w.shape[0]
            w.data[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / fan_in)
            for b in layer.blobs[1:]:
                b.data[...] = rng.uniform(-0.1, 0.1, b.shape)
            filled.append(lp.name)
    if filled:
        print("  no fillers for %s: weights drawn N(0, 2/fan_in)" % ", ".join(filled))
    # inputs: data ~ N(0, 1); labels uniform over the classes of the loss layer
    label_classes = {}
    for i, lp in enumerate(net._param.layer):
        if lp.type in ("SoftmaxWithLoss", "Accuracy") and len(lp.bottom) > 1:
            c = net._blobs[net._bottom_id_vecs[i][0]].shape[1]
            label_classes[net._bottom_id_vecs[i][1]] = c
    for i, lp in enumerate(net._param.layer):
        if lp.type != "Input":
            continue
        for k in net._top_id_vecs[i]:
            blob = net._blobs[k]
            labels = [v for key, v in label_classes.items()
                      if key == k or net._blob_names[key].startswith(net._blob_names[k])]
            if labels:
                blob.data[...] = rng.integers(0, labels[0], size=blob.shape)
            else:
                blob.data[...] = rng.standard_normal(blob.shape).astype(np.float32)
    return net


def run_ours_iteration(net, fwd, bwd):
    """One `caffe time` iteration; adds per-layer seconds into fwd/bwd; returns
    (forward seconds, backward seconds)."""
    perf = time.perf_counter
    n = len(net.layers)
    t_start = perf()
    for i in range(n):
        t0 = perf()
        net.forward_from_to(i, i)
        fwd[i] += perf() - t0
    t_mid = perf()
    for i in range(n - 1, -1, -1):
        t0 = perf()
        bottom = [net._blobs[k] for k in net._bottom_id_vecs[i]]
        top = [net._blobs[k] for k in net._top_id_vecs[i]]
        net.layers[i].backward(top, net.bottom_need_backward(i), bottom)
        bwd[i] += perf() - t0
    t_end = perf()
    return t_mid - t_start, t_end - t_mid


def time_ours(net, iters):
    n = len(net.layers)
    run_ours_iteration(net, [0.0] * n, [0.0] * n)   # warm-up
    fwd, bwd = [0.0] * n, [0.0] * n
    its = []
    for _ in range(iters):
        f, b = run_ours_iteration(net, fwd, bwd)
        its.append((f + b, f, b))
    return its, [x / iters for x in fwd], [x / iters for x in bwd]


def time_torch(tnet, inputs, iters, torch):
    perf = time.perf_counter

    def step():
        tnet.zero_grad_params()
        t0 = perf()
        _, loss, seeds = tnet(inputs)
        t1 = perf()
        tnet.backward(loss, seeds)
        t2 = perf()
        return (t2 - t0, t1 - t0, t2 - t1)

    tnet.train_mode = True
    step()                                            # warm-up
    its = [step() for _ in range(iters)]
    timings = {}
    with torch.no_grad():
        tnet(inputs, timings=timings)                 # per-op forward, one pass
    return its, timings


# --------------------------------------------------------------------------------
def agreement(net, tnet, np, torch):
    """Forward (Dropout off on both sides) and backward once each; returns
    [(what, max |ours - torch| / max |torch|)]."""
    from pycaffe_lowbit.proto import caffe_pb2
    saved = []
    for layer in net.layers:
        if layer.type == "Dropout":
            saved.append((layer, layer.phase))
            layer.phase = caffe_pb2.TEST
    tnet.train_mode = False
    try:
        net.clear_param_diffs()
        n = len(net.layers)
        run_ours_iteration(net, [0.0] * n, [0.0] * n)
        tnet.zero_grad_params()
        blobs, loss, seeds = tnet(tnet.inputs_from_net())
        tnet.backward(loss, seeds)
    finally:
        for layer, phase in saved:
            layer.phase = phase
        tnet.train_mode = True

    def rel(a, b):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        scale = np.abs(b).max() if b.size else 0.0
        d = np.abs(a - b).max() if b.size else 0.0
        return float(d / scale) if scale > 0 else float(d)

    # the net's outputs, and the input of its last (non-Accuracy) layer: the logits
    names = []
    last = len(net.layers) - 1
    while last > 0 and net._param.layer[last].type in ("Accuracy", "Silence"):
        last -= 1
    if net._bottom_id_vecs[last]:
        names.append(net._blob_names[net._bottom_id_vecs[last][0]])
    names += [n for n in net.outputs if n not in names]
    out = []
    for name in names:
        if blobs.get(name) is None:
            continue
        ours = net.blob_by_name(name).data
        theirs = blobs[name].detach().numpy()
        if ours.shape != theirs.shape and ours.size == theirs.size:
            theirs = theirs.reshape(ours.shape)
        out.append((name, rel(ours, theirs) if ours.shape == theirs.shape else float("nan")))
    if loss is not None:
        # gradient of the first learnable parameter (reaches through the whole net)
        for layer in net.layers:
            if layer.blobs and any(layer.param_propagate_down):
                g = tnet.grad_of(layer.blobs[0])
                if g is not None:
                    out.append(("d(%s.w)" % layer.name, rel(layer.blobs[0].diff, g)))
                break
    return out


# --------------------------------------------------------------------------------
def fmt_ms(sec):
    if sec is None:
        return "-"
    ms = sec * 1000.0
    return "%.0f ms" % ms if ms < 10000 else "%.2f s" % (ms / 1000)


def print_layers(name, net, fwd, bwd, k, torch_fwd):
    n = len(net.layers)
    total = sum(fwd) + sum(bwd)
    rows = []
    for i in range(n):
        lp = net._param.layer[i]
        shape = net._blobs[net._top_id_vecs[i][0]].shape if net._top_id_vecs[i] else ()
        rows.append((fwd[i] + bwd[i], i, lp.name, lp.type, shape, fwd[i], bwd[i]))
    rows.sort(reverse=True)
    print("\n[%s] slowest %d of %d layers (ours, mean ms per iteration; total %.1f ms)"
          % (name, min(k, n), n, total * 1000))
    has_t = torch_fwd is not None
    hdr = "%-28s %-15s %-20s %9s %9s %6s" % ("layer", "type", "top shape", "fwd ms",
                                             "bwd ms", "% tot")
    if has_t:
        hdr += " %13s" % "torch fwd ms"
    print(hdr)
    for tot, i, lname, ltype, shape, f, b in rows[:k]:
        line = "%-28s %-15s %-20s %9.1f %9.1f %5.1f%%" % (
            lname[:28], ltype[:15], "x".join(map(str, shape))[:20], f * 1000, b * 1000,
            100 * tot / total if total else 0)
        if has_t:
            t = torch_fwd.get(i, "-")
            line += " %13s" % ("%.1f" % (t * 1000) if isinstance(t, float) else
                               "fused" if t is None else "-")
        print(line)
    by_type = {}
    for tot, i, lname, ltype, shape, f, b in rows:
        e = by_type.setdefault(ltype, [0, 0.0, 0.0, 0.0, False])
        e[0] += 1
        e[1] += f
        e[2] += b
        if has_t:
            t = torch_fwd.get(i, 0.0)
            if t is None:
                e[4] = True
            else:
                e[3] += t
    print("[%s] per layer type:" % name)
    hdr = "%-15s %5s %9s %9s %6s" % ("type", "count", "fwd ms", "bwd ms", "% tot")
    if has_t:
        hdr += " %13s" % "torch fwd ms"
    print(hdr)
    for ltype, (cnt, f, b, t, fz) in sorted(by_type.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        line = "%-15s %5d %9.1f %9.1f %5.1f%%" % (ltype, cnt, f * 1000, b * 1000,
                                                 100 * (f + b) / total if total else 0)
        if has_t:
            line += " %13s" % ("fused" if fz and not t else "%.1f" % (t * 1000))
        print(line)


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    import numpy as np
    import pycaffe_lowbit as caffe
    torch = None
    torch_port = None
    torch_msg = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
            sys.path.insert(0, HERE)
            import _torch_port as torch_port
        except ImportError:
            torch = None
            torch_msg = TORCH_HINT
    caffe.set_mode_cpu()
    print("pycaffe_lowbit %s, numpy %s, torch %s, threads %d, iterations %d (+1 warm-up)"
          % (caffe.__version__, np.__version__,
             torch.__version__ if torch is not None else "-", args.threads, args.iters))
    if torch_msg:
        print(torch_msg)
    results = []
    for name in args.nets:
        spec = NETS[name]
        rng = np.random.default_rng(args.seed)
        print("\n== %s (%s, TRAIN, batch %d)" % (name, spec[0], spec[1]), flush=True)
        net = build_net(caffe, spec, args.seeds, rng)
        res = {"name": name, "batch": spec[1], "caffe": spec[3] / 1000.0, "torch": None,
               "check": [], "torch_note": None}
        tnet = None
        if torch is not None:
            try:
                torch.manual_seed(args.seed)
                tnet = torch_port.TorchNet(net)
                res["check"] = agreement(net, tnet, np, torch)
                print("  agreement (max |ours-torch| / max |torch|): "
                      + ", ".join("%s %.1e" % c for c in res["check"]), flush=True)
            except torch_port.Unsupported as exc:
                res["torch_note"] = str(exc)
                tnet = None
                print("  PyTorch: n/a (%s)" % exc)
        its, fwd, bwd = time_ours(net, args.iters)
        res["ours"] = its
        print("  ours:  best %s  mean %s  (forward %s, backward %s)" % (
            fmt_ms(min(t[0] for t in its)), fmt_ms(sum(t[0] for t in its) / len(its)),
            fmt_ms(sum(t[1] for t in its) / len(its)),
            fmt_ms(sum(t[2] for t in its) / len(its))), flush=True)
        torch_fwd = None
        if tnet is not None:
            t_its, timings = time_torch(tnet, tnet.inputs_from_net(), args.iters, torch)
            res["torch"] = t_its
            torch_fwd = {}
            for (i, oname, typ, fn, bottoms, tops, fused) in tnet._ops:
                if oname in timings:
                    torch_fwd[i] = timings[oname]
                for f in fused:
                    torch_fwd[f] = None   # folded into layer i's op
            print("  torch: best %s  mean %s  (forward %s, backward %s)" % (
                fmt_ms(min(t[0] for t in t_its)), fmt_ms(sum(t[0] for t in t_its) / len(t_its)),
                fmt_ms(sum(t[1] for t in t_its) / len(t_its)),
                fmt_ms(sum(t[2] for t in t_its) / len(t_its))), flush=True)
        if args.layers:
            print_layers(name, net, fwd, bwd, args.layers, torch_fwd)
        results.append(res)
        del tnet, net

    print("\nForward+backward per iteration (best of %d after 1 warm-up; mean in "
          "parentheses), %d thread(s)" % (args.iters, args.threads))
    cols = ("net", "batch", "ours", "Caffe", "ours/Caffe", "PyTorch", "ours/PyTorch",
            "output agreement")
    rows = []
    for r in results:
        ours_best = min(t[0] for t in r["ours"])
        ours_mean = sum(t[0] for t in r["ours"]) / len(r["ours"])
        if r["torch"]:
            t_best = min(t[0] for t in r["torch"])
            t_mean = sum(t[0] for t in r["torch"]) / len(r["torch"])
            torch_s = "%s (%s)" % (fmt_ms(t_best), fmt_ms(t_mean))
            ratio_t = "%.1fx" % (ours_best / t_best)
        else:
            torch_s, ratio_t = ("n/a" if r["torch_note"] else "-"), "-"
        check = max((c[1] for c in r["check"]), default=None)
        rows.append((r["name"], str(r["batch"]), "%s (%s)" % (fmt_ms(ours_best), fmt_ms(ours_mean)),
                     fmt_ms(r["caffe"]), "%.2fx" % (ours_best / r["caffe"]), torch_s, ratio_t,
                     "%.1e" % check if check is not None else "-"))
    widths = [max(len(c), *(len(row[k]) for row in rows)) for k, c in enumerate(cols)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print("Caffe: official BVLC Caffe, CPU, 1 OpenBLAS thread (../shared/golden/PERF.md; "
          "noisy machines, up to 24 %). Output agreement: worst of the checks above "
          "(max |ours - torch| / max |torch|, Dropout off).")
    if torch_msg:
        print(torch_msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
