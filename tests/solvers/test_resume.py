"""The real solvers resume from their own snapshots bit for bit (SGD, Adam,
AdaDelta; binary and HDF5), and ``solve(resume_file)``."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.formats.text import parse_net_text
from support.snapshots import MLP, assert_same_state


# -- the real solvers ------------------------------------------------------------------
class Feeder:
    """Feeds the Input blobs from the iteration number alone, so a resumed
    run sees the same data as an uninterrupted one."""

    def __init__(self, solver):
        self.solver = solver

    def on_start(self):
        net, it = self.solver.net, self.solver.iter
        rng = np.random.default_rng(1000 + it)
        net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
        net.blobs["label"].data[...] = rng.integers(0, 3, net.blobs["label"].shape)

    def on_gradients_ready(self):
        pass


SOLVER_SETTINGS = {
    "SGD": 'base_lr: 0.1 momentum: 0.9 weight_decay: 0.001 lr_policy: "multistep" '
           'gamma: 0.5 stepvalue: 3 stepvalue: 7',
    "Adam": 'base_lr: 0.01 momentum: 0.9 momentum2: 0.999 lr_policy: "fixed"',
    "AdaDelta": 'base_lr: 1.0 momentum: 0.95 delta: 1e-6 lr_policy: "fixed"',
}


def real_solver(tmp_path, kind, seed, fmt="BINARYPROTO", snapshot_every=5):
    from pycaffe_lowbit import solvers
    from pycaffe_lowbit.formats.text import parse_solver_text
    param = parse_solver_text('type: "%s" %s max_iter: 10 display: 0 snapshot: %d '
                              'snapshot_format: %s random_seed: %d'
                              % (kind, SOLVER_SETTINGS[kind], snapshot_every, fmt, seed))
    param.snapshot_prefix = str(tmp_path / kind)
    param.net_param.CopyFrom(parse_net_text(MLP))
    s = solvers.get_solver(param)
    s.add_callback(Feeder(s))
    return s


@pytest.mark.parametrize("kind,fmt", [("SGD", "BINARYPROTO"), ("Adam", "BINARYPROTO"),
                                      ("AdaDelta", "BINARYPROTO"), ("SGD", "HDF5")])
def test_resume_continues_bit_for_bit(tmp_path, kind, fmt):
    straight = real_solver(tmp_path, kind, seed=11, fmt=fmt)
    n = len(straight.net.learnable_params)
    assert len(straight.history) == (2 * n if kind in ("Adam", "AdaDelta") else n)
    straight.step(10)
    ext = ".h5" if fmt == "HDF5" else ""
    state = str(tmp_path / ("%s_iter_5.solverstate%s" % (kind, ext)))
    assert os.path.exists(state)
    assert os.path.exists(str(tmp_path / ("%s_iter_10.solverstate%s" % (kind, ext))))
    resumed = real_solver(tmp_path, kind, seed=99, fmt=fmt, snapshot_every=0)
    resumed.restore(state)
    assert resumed.iter == 5
    if kind == "SGD":
        assert resumed.current_step == 1                   # passed stepvalue 3
    resumed.step(5)
    assert resumed.iter == 10 and resumed.current_step == straight.current_step
    assert_same_state(straight, resumed)


def test_solve_with_resume_file(tmp_path):
    straight = real_solver(tmp_path, "SGD", seed=11)
    straight.solve()
    resumed = real_solver(tmp_path, "SGD", seed=5, snapshot_every=0)
    resumed.param.snapshot_after_train = False
    resumed.solve(str(tmp_path / "SGD_iter_5.solverstate"))
    assert_same_state(straight, resumed)
