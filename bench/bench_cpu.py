#!/usr/bin/env python
"""CPU speed of pycaffe_lowbit against official Caffe and PyTorch, in the same run.

A performance script, not a test. For each net (bench/_nets.py), with the same
batch and thread count, it runs alternately, ``--rounds`` times: official
Caffe's ``caffe time`` (a subprocess on a copy of the prototxt whose data layers
are Input layers), ours (what ``caffe time`` does: every layer's forward, then
every layer's backward with ``bottom_need_backward``; for the solver net a whole
``Solver.step(1)``) and PyTorch (bench/_torch_port.py: our Net translated, our
weights copied in). Each keeps its best iteration. Ratios are only printed from
figures measured in this run; a missing baseline prints n/a and why.

    python bench/bench_cpu.py                          # all nets, 1 thread, 3 rounds
    python bench/bench_cpu.py --threads 1,2 --rounds 2
    python bench/bench_cpu.py --nets alexnet --layers 10 --caffe ~/.cache/refcaffe/caffe

See bench/README.md.
"""
import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import _caffe  # noqa: E402
from _machine import cpu_model, set_threads  # noqa: E402
import _nets  # noqa: E402

NO_TORCH = ("PyTorch: not installed, so the PyTorch columns say n/a "
            "(pip install torch; a benchmark aid, never a dependency of pycaffe_lowbit)")
TARGETS = "geomean ours/Caffe <= 0.8, no net ours/Caffe > 1.0, ours/PyTorch <= 1.0 per net"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(_nets.NETS),
                   help="comma-separated subset of: %s" % ", ".join(_nets.NETS))
    p.add_argument("--threads", default="1",
                   help="thread counts, comma-separated (e.g. 1,2): one child process each")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--iters", type=int, default=0,
                   help="timed iterations per round (default 0: as many as fit in about "
                        "0.3 s of ours, 1 to 20)")
    p.add_argument("--caffe", default=None,
                   help="official Caffe binary (default $REFCAFFE_HOME or ~/.cache/refcaffe/"
                        "caffe/build/tools/caffe, from ../shared/refcaffe/build.sh)")
    p.add_argument("--no-caffe", action="store_true", help="skip official Caffe")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--layers", type=int, default=0, metavar="K",
                   help="print the K slowest layers of ours beside Caffe's and PyTorch's")
    p.add_argument("--seeds", default=_nets.SEEDS, help="the seed models' folder")
    p.add_argument("--seed", type=int, default=0, help="random seed for weights and inputs")
    args = p.parse_args(argv)
    args.nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    bad = [n for n in args.nets if n not in _nets.NETS]
    if bad:
        p.error("unknown net(s) %s; choose from %s" % (", ".join(bad), ", ".join(_nets.NETS)))
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        p.error("--threads takes comma-separated integers")
    if not args.threads or min(args.threads) < 1:
        p.error("--threads must be >= 1")
    if args.rounds < 1 or args.iters < 0:
        p.error("--rounds must be >= 1 and --iters >= 0")
    return args


def caffe_status(args, param):
    """(binary or None, the line saying why Caffe has no figure or None)."""
    if args.no_caffe:
        return None, "Caffe: skipped (--no-caffe)"
    binary = _caffe.find_binary(args.caffe)
    if binary is None:
        return None, _caffe.NOT_BUILT
    forks = _nets.fork_layers(param)
    if forks:
        return None, "Caffe cannot run %s: bar is PyTorch" % ", ".join(forks)
    return binary, None


# -- ours ------------------------------------------------------------------------
def ours_iteration(net, fwd=None, bwd=None):
    """One ``caffe time`` iteration: forward over every layer, then every layer's
    backward (``bottom_need_backward``). Without fwd/bwd, as whole passes (as
    training runs them: fused layer pairs run fused); with them, layer by
    layer, adding each layer's seconds into fwd/bwd."""
    perf = time.perf_counter
    t_start = perf()
    last = len(net.layers) - 1
    if fwd is None:
        net.forward_from_to(0, last)
        net.backward_from_to(last, 0, every_layer=True)
        return perf() - t_start
    for i in range(last + 1):
        t0 = perf()
        net.forward_from_to(i, i)
        fwd[i] += perf() - t0
    for i in range(last, -1, -1):
        t0 = perf()
        net.backward_from_to(i, i, every_layer=True)
        bwd[i] += perf() - t0
    return perf() - t_start


def ours_step(solver):
    t0 = time.perf_counter()
    solver.step(1)
    return time.perf_counter() - t0


def torch_iteration(tnet, inputs, opt):
    t0 = time.perf_counter()
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    else:
        tnet.zero_grad_params()
    _, loss, seeds = tnet(inputs)
    tnet.backward(loss, seeds)
    if opt is not None:
        opt.step()
    return time.perf_counter() - t0


# -- one net ---------------------------------------------------------------------
def bench_net(name, args, threads, ctx):
    np, caffe, torch, port = ctx["np"], ctx["caffe"], ctx["torch"], ctx["port"]
    rng = np.random.default_rng(args.seed)
    net, solver, param, batch = _nets.build(caffe, name, rng, args.seeds)
    what = "one solver iteration (forward, backward, update)" if solver else "forward+backward"
    print("\n== %s: %s, TRAIN, batch %d, %s" % (name, os.path.relpath(
        _nets.net_path(name, args.seeds), _nets.REPO), batch, what), flush=True)
    filled = _nets.fill_net(net, rng)
    if filled:
        print("  no fillers for %s: weights drawn N(0, 2/fan_in)" % ", ".join(filled))
    res = {"name": name, "batch": batch, "ours": [], "caffe": [], "torch": [],
           "caffe_note": None, "torch_note": None, "check": [], "caffe_layers": None,
           "layer_check": None}
    binary, res["caffe_note"] = caffe_status(args, param)
    if solver is not None and binary is not None:
        binary, res["caffe_note"] = None, "Caffe: `caffe time` cannot time an update: n/a"
    runner = _caffe.CaffeRunner(binary, _nets.caffe_text(param), threads) if binary else None
    tnet = opt = inputs = None
    if torch is None:
        res["torch_note"] = "PyTorch: not installed"
    else:
        try:
            torch.manual_seed(args.seed)
            tnet = port.TorchNet(net)
            res["layer_check"], res["check"] = port.agreement(net, tnet, ours_iteration)
            print("  agreement, max |ours-torch| / max |torch|: worst layer fed our bottoms "
                  "%s %.1e; end to end " % res["layer_check"]
                  + ", ".join("%s %.1e" % c for c in res["check"]), flush=True)
            opt = tnet.sgd(solver.param) if solver is not None else None
            inputs = tnet.inputs_from_net()
        except port.Unsupported as exc:
            res["torch_note"], tnet = "PyTorch: n/a (%s)" % exc, None
    n = len(net.layers)
    fwd, bwd = [0.0] * n, [0.0] * n
    # warm-up (Caffe's own run does one forward and backward before timing)
    warm = ours_step(solver) if solver is not None else ours_iteration(net)
    iters = args.iters or max(1, min(20, int(0.3 / max(warm, 1e-6))))
    res["iters"] = iters
    if tnet is not None:
        torch_iteration(tnet, inputs, opt)
    best_caffe_round = None
    try:
        for r in range(args.rounds):
            if runner is not None:
                try:
                    out = runner.run(iters)
                    res["caffe"] += out["iters"]
                    if best_caffe_round is None or min(out["iters"]) < best_caffe_round:
                        best_caffe_round, res["caffe_layers"] = min(out["iters"]), out["layers"]
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    res["caffe_note"] = "Caffe failed on this net: %s" % str(exc).splitlines()[-1]
                    runner.close()
                    runner = None
            for _ in range(iters):
                res["ours"].append(ours_step(solver) if solver is not None
                                   else ours_iteration(net))
            if tnet is not None:
                for _ in range(iters):
                    res["torch"].append(torch_iteration(tnet, inputs, opt))
            print("  round %d: Caffe %s, ours %s, PyTorch %s" % (
                r + 1, fmt(res["caffe"][-iters:] if res["caffe"] else None),
                fmt(res["ours"][-iters:]),
                fmt(res["torch"][-iters:] if res["torch"] else None)), flush=True)
    finally:
        if runner is not None:
            runner.close()
    for note in (res["caffe_note"], res["torch_note"]):
        if note:
            print("  " + note)
    if args.layers:
        if solver is not None:
            print("  (--layers: the solver net is timed as a whole step; no per-layer figures)")
        else:
            count = iters               # layer by layer, after the timed rounds
            for _ in range(count):
                ours_iteration(net, fwd, bwd)
            torch_fwd = {}
            if tnet is not None:
                with torch.no_grad():
                    tnet(inputs, timings=torch_fwd)
            print_layers(net, [f / count for f in fwd], [b / count for b in bwd], args.layers,
                         res["caffe_layers"], torch_fwd, tnet)
    return res


def fmt(seconds):
    if seconds is None:
        return "n/a"
    if isinstance(seconds, list):
        seconds = min(seconds)
    ms = seconds * 1000.0
    return "%.1f ms" % ms if ms < 100 else "%.0f ms" % ms


def print_layers(net, fwd, bwd, k, caffe_layers, torch_fwd, tnet):
    """The K slowest layers of ours, with Caffe's and PyTorch's figures."""
    ops = {}
    if tnet is not None:
        for (i, oname, typ, fn, bottoms, tops, fused) in tnet._ops:
            ops[i] = torch_fwd.get(oname)
            for f in fused:
                ops[f] = "fused"
    rows = sorted(range(len(net.layers)), key=lambda i: -(fwd[i] + bwd[i]))[:k]
    print("  %-26s %-18s %8s %8s | %8s %8s | %9s" % (
        "layer (ours' slowest)", "type", "ours fw", "ours bw", "Caffe fw", "Caffe bw",
        "torch fw"))
    for i in rows:
        lp = net._param.layer[i]
        c = (caffe_layers or {}).get(lp.name)
        t = ops.get(i)
        print("  %-26s %-18s %8.1f %8.1f | %8s %8s | %9s" % (
            lp.name[:26], lp.type[:18], fwd[i] * 1e3, bwd[i] * 1e3,
            "%.1f" % (c[0] * 1e3) if c else "-", "%.1f" % (c[1] * 1e3) if c else "-",
            t if isinstance(t, str) else "%.1f" % (t * 1e3) if t is not None else "-"))
    print("  (ms per iteration; ours: the mean over layer-by-layer iterations run after the"
          " timed ones, fused pairs unfused; Caffe: the mean over its timed iterations;"
          " PyTorch: one forward, ops timed one by one; its backward is one autograd call)")


# -- summary ---------------------------------------------------------------------
def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary(results, threads, args):
    print("\nSummary, %d thread(s): best iteration of each over %d round(s), measured "
          "alternately in this run (iterations per round: %s)" % (threads, args.rounds, ", ".join(
              "%s %d" % (r["name"], r["iters"]) for r in results)))
    cols = ("net", "batch", "Caffe", "ours", "PyTorch", "ours/Caffe", "ours/PyTorch",
            "agreement layer / net")
    rows, rc, rt = [], [], []
    for r in results:
        ours = min(r["ours"])
        c = min(r["caffe"]) if r["caffe"] else None
        t = min(r["torch"]) if r["torch"] else None
        if c:
            rc.append((r["name"], ours / c))
        if t:
            rt.append((r["name"], ours / t))
        check = max((v for _, v in r["check"]), default=None)
        layer = r["layer_check"][1] if r["layer_check"] else None
        rows.append((r["name"], str(r["batch"]), fmt(c), fmt(ours), fmt(t),
                     "%.2f" % (ours / c) if c else "n/a", "%.2f" % (ours / t) if t else "n/a",
                     "%s / %s" % tuple("%.0e" % v if v is not None else "-" for v in (layer, check))))
    widths = [max(len(h), *(len(row[k]) for row in rows)) for k, h in enumerate(cols)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(cols, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |")
    for r in results:
        for note in (r["caffe_note"], r["torch_note"]):
            if note:
                print("  %s: %s" % (r["name"], note))
    g_c, g_t = geomean([v for _, v in rc]), geomean([v for _, v in rt])
    print("geomean ours/Caffe: %s over %d net(s); geomean ours/PyTorch: %s over %d net(s)"
          % ("%.2f" % g_c if g_c else "n/a", len(rc), "%.2f" % g_t if g_t else "n/a", len(rt)))
    print("Targets (%s), %d thread(s):" % (TARGETS, threads))
    verdict = lambda ok: "holds" if ok else "does NOT hold"  # noqa: E731
    print("  geomean ours/Caffe <= 0.8: %s" % (verdict(g_c <= 0.8) if g_c else "n/a (no Caffe figure)"))
    over = [n for n, v in rc if v > 1.0]
    print("  no net ours/Caffe > 1.0: %s" % (
        "n/a (no Caffe figure)" if not rc else verdict(not over) + (
            " (%s)" % ", ".join(over) if over else "")))
    slow = [n for n, v in rt if v > 1.0]
    missing = [r["name"] for r in results if not r["torch"]]
    print("  ours/PyTorch <= 1.0 per net: %s%s" % (
        "n/a (no PyTorch figure)" if not rt else verdict(not slow) + (
            " (%s)" % ", ".join(slow) if slow else ""),
        "; no PyTorch figure for %s" % ", ".join(missing) if rt and missing else ""))


def run(args, threads):
    set_threads(threads)
    import numpy as np
    import pycaffe_lowbit as caffe
    from pycaffe_lowbit.cpu import onednn
    # oneDNN (and its GNU OpenMP, with the package's spin setting) loads before
    # torch, as in a user's process; torch then shares that OpenMP runtime
    onednn.available()
    ctx = {"np": np, "caffe": caffe, "torch": None, "port": None}
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:
                pass
            import _torch_port
            ctx["torch"], ctx["port"] = torch, _torch_port
        except ImportError:
            pass
    try:
        import numba
        numba_v = numba.__version__
    except ImportError:
        numba_v = "not installed"
    caffe.set_mode_cpu()
    print("CPU: %s (%d logical); %s UTC; %d thread(s)" % (
        cpu_model(), os.cpu_count() or 0,
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), threads))
    print("pycaffe_lowbit %s, numpy %s, torch %s, numba %s, Python %s" % (
        caffe.__version__, np.__version__,
        ctx["torch"].__version__ if ctx["torch"] else "not installed", numba_v,
        platform.python_version()))
    binary = None if args.no_caffe else _caffe.find_binary(args.caffe)
    print("Caffe: %s" % (binary or ("skipped" if args.no_caffe else _caffe.NOT_BUILT[7:])))
    if ctx["torch"] is None and not args.no_torch:
        print(NO_TORCH)
    results = [bench_net(name, args, threads, ctx) for name in args.nets]
    summary(results, threads, args)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if len(args.threads) == 1:
        return run(args, args.threads[0])
    rc = 0
    for t in args.threads:       # one process per count: the BLAS reads its env at import
        env = dict(os.environ)
        set_threads(t)
        env.update({k: os.environ[k] for k in os.environ if k.endswith("_THREADS")})
        cmd = [sys.executable, os.path.abspath(__file__)] + _without_threads(argv) + [
            "--threads", str(t)]
        print("\n######## %d thread(s)" % t, flush=True)
        rc = max(rc, subprocess.call(cmd, env=env))
    return rc


def _without_threads(argv):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--threads":
            skip = True
        elif not a.startswith("--threads="):
            out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
