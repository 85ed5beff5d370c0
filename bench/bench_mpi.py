"""Data-parallel speed-up: 1 process with batch 2b against ``mpirun -np 2``
processes with batch b each (the same updates), LeNet on the golden digits
LMDB, 1 OpenBLAS thread per process. Prints the time per iteration of each and
their ratio (> 1: the 2 processes are faster). A performance script, not a test.

    python bench/bench_mpi.py [--batch 64] [--iters 20] [--np 2]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLVERS = os.path.join(ROOT, "tests", "data", "golden", "solvers")


def worker(batch, iters):
    sys.path.insert(0, ROOT)
    from pycaffe_lowbit.formats import text
    from pycaffe_lowbit.parallel import launch
    from pycaffe_lowbit.proto import caffe_pb2
    from pycaffe_lowbit.solvers import SGDSolver
    os.chdir(SOLVERS)
    net = text.read_net_param("lenet_train_test.prototxt")
    for layer in net.layer:
        if layer.type == "Data":
            layer.data_param.batch_size = batch
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(net)
    p.base_lr, p.momentum, p.lr_policy, p.random_seed = 0.01, 0.9, "fixed", 1
    comm = launch.join_world()
    solver = SGDSolver(p)
    launch.attach(solver, comm)
    solver.step(2)                      # warm-up
    comm.barrier()
    start = time.perf_counter()
    solver.step(iters)
    comm.barrier()
    if comm.rank == 0:
        print("TIME %.6f" % ((time.perf_counter() - start) / iters))


def _time(cmd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return float(re.search(r"TIME (\S+)", out.stdout).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64, help="per-process batch b")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.batch, args.iters)
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--iters", str(args.iters)]
    single = _time(me + ["--batch", str(args.np * args.batch)])
    mpirun = [shutil.which("mpirun") or "mpirun", "--oversubscribe", "-np", str(args.np)]
    if os.geteuid() == 0:
        mpirun.insert(1, "--allow-run-as-root")
    multi = _time(mpirun + me + ["--batch", str(args.batch)])
    print("LeNet, effective batch %d, %d iterations, %d CPU cores"
          % (args.np * args.batch, args.iters, os.cpu_count()))
    print("  1 process  x batch %4d: %8.1f ms/iter" % (args.np * args.batch, single * 1e3))
    print("  %d processes x batch %4d: %8.1f ms/iter" % (args.np, args.batch, multi * 1e3))
    print("  speed-up: %.2fx" % (single / multi))


if __name__ == "__main__":
    main()
