#!/usr/bin/env python
"""Packed (bits + popcount) against float inference, layer by layer, in one run.

A performance script, not a test. For AlexNet-HWGQ (models/alexnet_hwgq/
deploy.prototxt) and the digits BNN (models/digits_bnn/deploy.prototxt), with
random weights and BatchNorm statistics calibrated on a random input, it makes
the deploy forms as ``lowbit-caffe deploy`` does (``pipeline.build_deploy``: the
plain float "bw" net and the packed model, loaded by ``PackedNet``) and times,
at each batch size, each binary Convolution / InnerProduct layer: the float
layer of the bw net against the packed layer, on the same input blob,
alternating (float, packed, float, packed...), best of each. Layers whose input
is not quantized (the first convolution reads the image) run in float in both
and are shown but not counted. Per model: the sum over its binary layers of
the float times over the sum of the packed times (above 1: packed is faster).

On CPU the packed layers use the Numba kernels of ``pycaffe_lowbit.cpu.popcount``
(LOWBIT_NUMBA=0: the NumPy path). Threads: BLAS (float) and Numba (packed).

Then the whole net, alternating too: our float layers (the bw net), our packed
runtime, and onnxruntime on the quantized ONNX exports of the same weights
(``export_onnx(..., quant=...)``): ``integer`` (QDQ with ConvInteger /
MatMulInteger, onnxruntime's integer kernels) and ``qdq`` (plain QDQ pairs,
which onnxruntime runs in float around these nets' convolutions), each at
``--ort_threads`` intra-op threads (ours keep ``--threads``). Ratios: our float
net's time over each (above 1: faster than our float layers). Needs
onnxruntime (``--no-ort`` leaves it out).

    python bench/bench_packed.py                      # both nets, batch 1 and 64, 1 thread
    python bench/bench_packed.py --threads 2 --rounds 5 --nets digits_bnn
    python bench/bench_packed.py --ort_threads 1,2 --ort_formats integer,qdq
"""
import argparse
import datetime
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from _machine import cpu_model, set_threads  # noqa: E402

NETS = {"alexnet_hwgq": "models/alexnet_hwgq/deploy.prototxt",
        "digits_bnn": "models/digits_bnn/deploy.prototxt"}


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nets", default=",".join(NETS), help="of: %s" % ", ".join(NETS))
    p.add_argument("--batches", default="1,64", help="batch sizes")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (best kept)")
    p.add_argument("--threads", type=int, default=1, help="BLAS and Numba threads")
    p.add_argument("--ort_threads", default="1,2", help="onnxruntime intra-op thread counts")
    p.add_argument("--ort_formats", default="integer,qdq", help="quantized ONNX formats to run")
    p.add_argument("--net_rounds", type=int, default=3, help="whole-net alternating rounds")
    p.add_argument("--no-ort", dest="ort", action="store_false", help="leave onnxruntime out")
    return p.parse_args(argv)


def with_batch(path, batch, out):
    """The deploy prototxt at ``path`` with its input's first dimension ``batch``."""
    from pycaffe_lowbit.formats import text
    param = text.read_net_param(path)
    if len(param.input_shape):
        param.input_shape[0].dim[0] = batch
    elif len(param.input_dim):
        param.input_dim[0] = batch
    else:
        for lp in param.layer:
            if lp.type == "Input":
                lp.input_param.shape[0].dim[0] = batch
                break
    text.write_text(param, out)
    return out


def randomize(net, rng):
    """Random weights, then BatchNorm statistics matching a random input."""
    import numpy as np
    for layer in net.layers:
        if layer.type != "BatchNorm":
            for b in layer.blobs:
                b.data[...] = rng.standard_normal(b.shape) * 0.1
    data = net.blob_by_name(net._blob_names[0] if "data" not in net._blob_names else "data")
    data.data[...] = rng.standard_normal(data.shape)
    for i, layer in enumerate(net.layers):
        if layer.type == "BatchNorm":
            x = net._blobs[net._bottom_id_vecs[i][0]].data
            axes = (0,) + tuple(range(2, x.ndim))
            layer.blobs[0].data[...] = x.mean(axis=axes)
            layer.blobs[1].data[...] = x.var(axis=axes) + np.float32(1e-3)
            layer.blobs[2].data[...] = 1
        net.forward_from_to(i, i)


def layer_runner(net, name):
    i = net._layer_names.index(name)
    bottom = [net._blobs[k] for k in net._bottom_id_vecs[i]]
    top = [net._blobs[k] for k in net._top_id_vecs[i]]
    layer = net.layers[i]

    def run():
        layer.reshape(bottom, top)
        layer.forward(bottom, top)
    return run


def build(model_path, batch, seed, onnx_formats=()):
    import numpy as np
    from pycaffe_lowbit.core import backend
    from pycaffe_lowbit.core.net import Net, TEST
    from pycaffe_lowbit.deploy import pack, pipeline
    from pycaffe_lowbit.deploy.runtime import PackedNet
    rng = np.random.default_rng(seed)
    backend.set_random_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = with_batch(model_path, batch, os.path.join(tmp, "net.prototxt"))
        train = Net(model, TEST)
        randomize(train, rng)
        weights = os.path.join(tmp, "net.caffemodel")
        train.save(weights)
        _, bw_param, _, packed, quantized = pipeline.build_deploy(model, weights, do_fold=False)
        path = os.path.join(tmp, "net.lbpack")
        pack.save_packed(packed, path)
        packed_net = PackedNet(path)
        exports = {}
        for fmt in onnx_formats:
            from pycaffe_lowbit.deploy.onnx_export import export_onnx
            out = os.path.join(tmp, "net_%s.onnx" % fmt)
            export_onnx(model, weights, out, quant=fmt)
            with open(out, "rb") as f:
                exports[fmt] = f.read()
    float_net = Net(bw_param, TEST)
    name = "data" if "data" in float_net._blob_names else float_net._blob_names[0]
    x = rng.standard_normal(float_net.blob_by_name(name).shape).astype(np.float32)
    for net in (float_net, packed_net):
        net.blob_by_name(name).data[...] = x
        net.forward_prefilled()
    return float_net, packed_net, quantized, exports, x


def bench(label, model_path, batch, rounds, log, args=None):
    float_net, packed_net, quantized, exports, x = build(
        os.path.join(ROOT, model_path), batch, 0,
        args.ort_formats.split(",") if args is not None and args.ort else ())
    runs = [(name, layer_runner(float_net, name), layer_runner(packed_net, name))
            for name in quantized]
    best = {name: [float("inf"), float("inf")] for name in quantized}
    for name, f, p in runs:          # warm-up (and the kernels' first compile)
        f(), p()
    for _ in range(rounds):
        for name, f, p in runs:
            for j, fn in enumerate((f, p)):
                t0 = time.perf_counter()
                fn()
                best[name][j] = min(best[name][j], time.perf_counter() - t0)
    log("\n== %s, batch %d ==" % (label, batch))
    log("%-8s %-10s %12s %12s %8s" % ("layer", "path", "float ms", "packed ms", "ratio"))
    tot_f = tot_p = 0.0
    for name in quantized:
        tf, tp = best[name]
        kind = packed_net.packed_layers[name]
        if kind != "float":
            tot_f, tot_p = tot_f + tf, tot_p + tp
        log("%-8s %-10s %12.3f %12.3f %7.2fx%s" % (name, kind, tf * 1e3, tp * 1e3, tf / tp,
                                                  "" if kind != "float" else "  (not counted)"))
    ratio = tot_f / tot_p if tot_p else float("nan")
    log("%-8s %-10s %12.3f %12.3f %7.2fx" % ("binary", "(sum)", tot_f * 1e3, tot_p * 1e3, ratio))
    whole = whole_net(float_net, packed_net, exports, x, args, log) if args is not None else {}
    return ratio, whole


def ort_session(model_bytes, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def whole_net(float_net, packed_net, exports, x, args, log):
    """Best whole-net forward time of each path, alternating; {path: ms}."""
    runs = [("ours: float layers", float_net.forward_prefilled),
            ("ours: packed", packed_net.forward_prefilled)]
    for fmt, model_bytes in exports.items():
        for threads in (int(t) for t in args.ort_threads.split(",")):
            session = ort_session(model_bytes, threads)
            runs.append(("onnxruntime %s, %d thr" % (fmt, threads),
                         lambda s=session: s.run(None, {"data": x})))
    best = {name: float("inf") for name, _ in runs}
    for name, fn in runs:
        fn()
    for _ in range(args.net_rounds):
        for name, fn in runs:
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    base = best["ours: float layers"]
    log("%-30s %12s %8s" % ("whole net", "ms", "float/x"))
    for name, _ in runs:
        log("%-30s %12.3f %7.2fx" % (name, best[name] * 1e3, base / best[name]))
    return {name: t * 1e3 for name, t in best.items()}


def main(argv=None):
    args = parse(argv)
    set_threads(args.threads)
    import numpy as np
    import pycaffe_lowbit  # noqa: F401
    from pycaffe_lowbit.cpu import popcount
    if popcount.available():
        import numba
        numba.set_num_threads(args.threads)
        kernel = "Numba %s" % numba.__version__
    else:
        kernel = "NumPy bitwise_count (Numba off)"
    print("%s | %s | threads %d | numpy %s | packed kernel: %s | rounds %d"
          % (datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             cpu_model(), args.threads, np.__version__, kernel, args.rounds))
    if args.ort:
        try:
            import onnxruntime
            print("onnxruntime %s (ours at %d thread(s))" % (onnxruntime.__version__, args.threads))
        except ImportError:
            print("onnxruntime: not installed (pip install onnxruntime); its columns left out")
            args.ort = False
    summary = []
    for label in args.nets.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            summary.append((label, batch) + bench(label, NETS[label], batch, args.rounds, print,
                                                  args))
    print("\nfloat / packed over the binary layers (target >= 5x):")
    for label, batch, ratio, _ in summary:
        print("  %-14s batch %3d  %6.2fx" % (label, batch, ratio))
    print("\nwhole net, ms (ratio: our float layers' time over each):")
    for label, batch, _, whole in summary:
        base = whole["ours: float layers"]
        print("  %-14s batch %3d  " % (label, batch) + "  ".join(
            "%s %.2f ms (%.2fx)" % (name, ms, base / ms) for name, ms in whole.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
