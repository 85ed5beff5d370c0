"""pycaffe's solver API in CPU mode and in GPU mode on the CuPy double
(``pycaffe_mode``): ``caffe.SGDSolver``/``caffe.get_solver``, ``solver.net``
and ``solver.test_nets``, ``step``/``solve``/``iter``, snapshot and restore,
and edits through ``solver.net.params`` reaching the update.

The problem (``REGRESSION``): a fixed batch x (8, 3), targets t = x w* + 0.5
with w* = (1, -2, 0.5); pred = InnerProduct(x), 1 output; loss = EuclideanLoss
= sum((pred - t)^2) / (2 * 8). SGD with momentum on it converges to w*."""
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe

REGRESSION = """
name: "modes_regression"
layer { name: "feed" type: "Input" top: "x" top: "target"
        input_param { shape { dim: 8 dim: 3 } shape { dim: 8 dim: 1 } } }
layer { name: "fc" type: "InnerProduct" bottom: "x" top: "pred"
        inner_product_param { num_output: 1 weight_filler { type: "constant" value: 0 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "pred" bottom: "target" top: "loss" }
"""
TRUE_W = np.array([1.0, -2.0, 0.5], np.float32)
LR = 0.1


def problem():
    x = np.random.RandomState(0).randn(8, 3).astype(np.float32)
    return x, (x @ TRUE_W + 0.5)[:, None].astype(np.float32)


def solver_file(tmp_path, **overrides):
    net = tmp_path / "regression.prototxt"
    net.write_text(REGRESSION)
    settings = dict(net='"%s"' % net, base_lr=LR, momentum=0.9, weight_decay=0,
                    lr_policy='"fixed"', max_iter=30, display=0, test_iter=1,
                    test_interval=1000, test_initialization="false",
                    snapshot_after_train="false",
                    snapshot_prefix='"%s"' % (tmp_path / "regression"))
    settings.update(overrides)
    path = tmp_path / "solver.prototxt"
    path.write_text("\n".join("%s: %s" % item for item in settings.items()))
    return str(path)


def feed(net):
    x, t = problem()
    net.blobs["x"].data[...] = x
    net.blobs["target"].data[...] = t


def loss_of(net):
    return float(net.forward()["loss"])


def make(tmp_path, **overrides):
    solver = caffe.SGDSolver(solver_file(tmp_path, **overrides))
    for net in [solver.net] + list(solver.test_nets):
        feed(net)
    return solver


def test_solver_builds_its_nets(pycaffe_mode, tmp_path):
    solver = make(tmp_path)
    assert isinstance(solver.net, caffe.Net) and solver.iter == 0
    assert len(solver.test_nets) == 1 and isinstance(solver.test_nets[0], caffe.Net)
    assert solver.net.outputs == ["loss"] and list(solver.net.params) == ["fc"]
    assert type(solver.net.params["fc"][0].data) is np.ndarray
    other = caffe.get_solver(solver_file(tmp_path))
    assert type(other) is type(solver) and other.iter == 0


def test_step_learns_and_counts_iterations(pycaffe_mode, tmp_path):
    solver = make(tmp_path)
    before = loss_of(solver.net)
    solver.step(5)
    assert solver.iter == 5
    after_five = loss_of(solver.net)
    solver.step(75)
    assert solver.iter == 80
    after = loss_of(solver.net)
    assert after < after_five < before
    assert after < 0.01 * before
    np.testing.assert_allclose(solver.net.params["fc"][0].data.ravel(), TRUE_W, atol=0.1)


def test_an_edit_through_params_is_what_the_update_starts_from(pycaffe_mode, tmp_path):
    solver = make(tmp_path)
    start = np.array([[0.3, 0.2, -0.1]], np.float32)
    solver.net.params["fc"][0].data[...] = start
    solver.net.params["fc"][1].data[...] = 0.25
    solver.step(1)
    x, t = problem()
    residual = x @ start.T + 0.25 - t                 # d loss / d pred, times 8
    grad_w = residual.T @ x / 8
    grad_b = residual.sum() / 8
    np.testing.assert_allclose(solver.net.params["fc"][0].data, start - LR * grad_w,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(solver.net.params["fc"][1].data, [0.25 - LR * grad_b],
                               rtol=1e-5, atol=1e-6)


def test_snapshot_then_restore_continues_identically(pycaffe_mode, tmp_path):
    solver = make(tmp_path)
    solver.step(4)
    solver.snapshot()
    state = str(tmp_path / "regression_iter_4.solverstate")
    assert os.path.isfile(state) and os.path.isfile(str(tmp_path / "regression_iter_4.caffemodel"))
    solver.step(6)
    uninterrupted = [p.data.copy() for p in solver.net.params["fc"]]

    resumed = make(tmp_path)
    resumed.restore(state)
    assert resumed.iter == 4
    resumed.step(6)
    assert resumed.iter == 10
    for mine, theirs in zip(uninterrupted, resumed.net.params["fc"]):
        np.testing.assert_allclose(theirs.data, mine, rtol=1e-6, atol=1e-7)


def test_solve_runs_to_max_iter_and_tests_share_the_weights(pycaffe_mode, tmp_path):
    solver = make(tmp_path, max_iter=12, snapshot_after_train="true")
    solver.solve()
    assert solver.iter == 12
    assert os.path.isfile(str(tmp_path / "regression_iter_12.caffemodel"))
    solver.test_nets[0].share_with(solver.net)
    assert loss_of(solver.test_nets[0]) == pytest.approx(loss_of(solver.net), rel=1e-6)


def test_nets_outlive_their_solver(pycaffe_mode, tmp_path):
    solver = make(tmp_path)
    solver.step(2)
    nets = [solver.net] + list(solver.test_nets)
    del solver
    for net in nets:
        total = sum(float(p.data.sum() + p.diff.sum()) for ps in net.params.values() for p in ps)
        assert np.isfinite(total) and np.isfinite(loss_of(net))
