#!/usr/bin/env python3
"""Resident memory, ours against official Caffe, in the same run.

    python bench/bench_memory.py                 # import, and `time` on AlexNet b10
    python bench/bench_memory.py --rounds 3 --caffe ~/.cache/refcaffe/caffe

Prints the peak resident set (``getrusage`` of each child: ``ru_maxrss``) of
  * ``import pycaffe_lowbit`` (and a bare interpreter, for scale);
  * ``lowbit-caffe time -model bvlc_alexnet/deploy.prototxt -iterations 2``
    (batch 10, the net's own) against ``caffe time`` on the same file,
alternating ours and Caffe's, with their ratio per round. One OpenBLAS thread
each (the thread pools' stacks are part of the figure otherwise).
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _caffe  # noqa: E402
from _machine import cpu_model, set_threads  # noqa: E402

SEEDS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "seeds"))
ALEXNET = os.path.join(SEEDS, "bvlc", "models", "bvlc_alexnet", "deploy.prototxt")


def isolated_peak_mib(command):
    """Peak RSS (MiB) of ``command``, run from a fresh child python so that
    ``RUSAGE_CHILDREN`` holds that command's figure alone."""
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL, check=True)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)")
    out = subprocess.run([sys.executable, "-c", code] + command, capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit("%s failed:\n%s" % (" ".join(command), out.stderr[-2000:]))
    return float(out.stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--caffe", default=None, help="official Caffe binary")
    parser.add_argument("--model", default=ALEXNET, help="net for the `time` runs")
    args = parser.parse_args(argv)
    set_threads(1)
    caffe = _caffe.find_binary(args.caffe)
    print("machine: %s; 1 thread; model %s" % (cpu_model(), os.path.relpath(args.model)))
    bare = isolated_peak_mib([sys.executable, "-c", "pass"])
    ours_import = isolated_peak_mib([sys.executable, "-c", "import pycaffe_lowbit"])
    print("import pycaffe_lowbit: %.1f MiB (bare interpreter %.1f MiB)" % (ours_import, bare))
    ours_cmd = [sys.executable, "-m", "pycaffe_lowbit.cli", "time", "-model", args.model,
                "-iterations", "2"]
    if not caffe:
        print(_caffe.NOT_BUILT)
    print("%-6s %12s %12s %8s" % ("round", "ours MiB", "Caffe MiB", "ratio"))
    for r in range(args.rounds):
        ours = isolated_peak_mib(ours_cmd)
        theirs = (isolated_peak_mib([caffe, "time", "-model", args.model, "-iterations", "2"])
                  if caffe else None)
        print("%-6d %12.1f %12s %8s" % (r + 1, ours, "%.1f" % theirs if theirs else "n/a",
                                        "%.3f" % (ours / theirs) if theirs else "n/a"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
