"""One rank of the data-parallel tests (tests/parallel/test_parallel_mpi.py).

``python tests/mpi_worker.py CONFIG.json`` (under ``mpirun -np N``, or alone):
trains a tiny net on the golden digits LMDB (Data -> Convolution -> ReLU ->
TernaryInnerProduct with the SQ roulette -> SoftmaxWithLoss) with the library's
world machinery, as ``lowbit-caffe train`` does, and writes
``<out>/rank<r>.npz``: the learnable params after training and the SQ mask of
every iteration. Ranks other than 0 perturb their params and their random
generator before the broadcast, so agreement proves it. CONFIG: out, batch, iter_size, iters, snapshot (0: none),
fail ("raise" or "kill": rank 1 fails at iteration 2).
"""
import json
import logging
import os
import signal
import sys

import numpy as np

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]   # run by mpirun as a script

from support import paths  # noqa: E402

from pycaffe_lowbit.core import backend  # noqa: E402
from pycaffe_lowbit.formats import text  # noqa: E402
from pycaffe_lowbit.parallel import launch  # noqa: E402
from pycaffe_lowbit.proto import caffe_pb2  # noqa: E402
from pycaffe_lowbit.solvers import SGDSolver  # noqa: E402

DB = os.path.join(paths.GOLDEN, "solvers", "digits_%s_lmdb")

NET = """
name: "tiny"
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TRAIN }
  transform_param { scale: 0.00390625 }
  data_param { source: "%(train)s" batch_size: %(batch)d backend: LMDB } }
layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST }
  transform_param { scale: 0.00390625 }
  data_param { source: "%(test)s" batch_size: 8 backend: LMDB } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 5 stride: 3
    weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "ip" type: "TernaryInnerProduct" bottom: "conv" top: "ip"
  inner_product_param { num_output: 10 sq: true ratio: 50
    weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc"
  include { phase: TEST } }
"""


def solver_param(cfg):
    net = text.parse_net_text(NET % dict(train=DB % "train", test=DB % "test",
                                          batch=cfg["batch"]))
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(net)
    p.base_lr, p.momentum, p.weight_decay = 0.05, 0.9, 5e-4
    p.lr_policy = "fixed"
    p.max_iter = cfg["iters"]
    p.iter_size = cfg["iter_size"]
    p.display = 1
    p.random_seed = 7
    p.test_iter.append(2)
    p.test_interval = 3
    p.snapshot = cfg.get("snapshot", 0)
    p.snapshot_after_train = False
    p.snapshot_prefix = os.path.join(cfg["out"], "snap")
    return p


class Recorder:
    """Keeps the SQ mask of every iteration; rank 1 fails at iteration 2 when told."""

    def __init__(self, solver, comm, fail):
        self.solver, self.comm, self.fail = solver, comm, fail
        self.masks = []

    def on_start(self):
        pass

    def on_gradients_ready(self):
        layer = self.solver.net.layer_dict["ip"]
        self.masks.append(layer.weight_quantizer.selected.copy())
        if self.comm.rank == 1 and self.solver.iter == 2:
            if self.fail == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if self.fail == "kill":
                os.kill(os.getpid(), signal.SIGKILL)


def train(cfg):
    """Train as configured; returns (learnable params, masks) of this rank."""
    comm = launch.join_world()
    log = logging.getLogger("pycaffe_lowbit")
    with launch.guard(comm, log):
        solver = SGDSolver(solver_param(cfg))
        if comm.rank > 0:       # only the broadcast makes the ranks agree again
            for blob in solver.net.learnable_params:
                blob.data += 0.5
            backend.rng().random(17)
        launch.attach(solver, comm)
        rec = Recorder(solver, comm, cfg.get("fail"))
        solver.add_callback(rec)
        solver.solve()
    params = [np.array(b.data) for b in solver.net.learnable_params]
    return comm.rank, params, np.array(rec.masks)


def main():
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    rank, params, masks = train(cfg)
    np.savez(os.path.join(cfg["out"], "rank%d.npz" % rank), masks=masks,
             **{"p%d" % i: p for i, p in enumerate(params)})


if __name__ == "__main__":
    main()
