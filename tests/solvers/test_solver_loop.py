"""The training loop: iter_size, clipping, regularization, multipliers, test
nets, average_loss, display, callbacks, solve, snapshots and actions."""
import math
import re

import numpy as np
import pytest

from pycaffe_lowbit.formats import text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import SGDSolver, NesterovSolver, AdaGradSolver, AdamSolver, SolverError, get_solver
from support import solver_data
from support.tiny_solver import W0, B0, make_batches, grads, tiny_solver, reference, F32, run_and_compare, params


# -- loop features ----------------------------------------------------------------------
def test_iter_size_accumulates_and_normalizes(loglines, xp):
    batches = make_batches("acc", n_batches=4)
    solver = tiny_solver("SGD", key="acc", momentum=0.9, weight_decay=0.01, iter_size=2,
                         display=1)
    expected, losses = reference("SGD", batches, 4, momentum=F32(0.9),
                                 weight_decay=F32(0.01), iter_size=2)
    for it in range(4):
        solver.step(1)
        np.testing.assert_allclose(params(solver)[0], expected[it][0], rtol=1e-10)
        assert solver.smoothed_loss == pytest.approx(losses[it], rel=1e-6)
    # iter_size 2 on batches (b0, b1) differs from iter_size 1 on b0 alone
    single, _ = reference("SGD", batches, 1, momentum=F32(0.9), weight_decay=F32(0.01))
    assert not np.allclose(single[0][0], expected[0][0])


def test_clip_gradients_scales_and_logs(loglines, xp):
    batches = make_batches("clip", n_batches=2)
    solver = tiny_solver("SGD", key="clip", momentum=0.9, clip_gradients=0.1, display=1,
                         weight_decay=0.01)
    expected, _ = reference("SGD", batches, 4, momentum=F32(0.9), clip=F32(0.1),
                            weight_decay=F32(0.01))
    run_and_compare(solver, expected, 4)
    pattern = re.compile(r"^Gradient clipping: scaling down gradients \(L2 norm (\S+) > "
                         r"0\.1\) by scale factor (\S+)$")
    clips = [pattern.match(line) for line in loglines if line.startswith("Gradient clip")]
    assert len(clips) == 4 and all(clips)
    gw, gb, _ = grads(W0, B0, batches[0])
    norm = math.sqrt((gw ** 2).sum() + (gb ** 2).sum())
    assert float(clips[0].group(1)) == pytest.approx(norm, rel=1e-5)
    assert float(clips[0].group(2)) == pytest.approx(F32(0.1) / norm, rel=1e-5)


def test_clip_gradients_below_threshold_is_a_no_op(loglines, xp):
    batches = make_batches("noclip", n_batches=2)
    solver = tiny_solver("SGD", key="noclip", momentum=0.9, clip_gradients=1e6)
    expected, _ = reference("SGD", batches, 2, momentum=F32(0.9))
    run_and_compare(solver, expected, 2)
    assert not any(line.startswith("Gradient clipping") for line in loglines)


@pytest.mark.parametrize("reg", ["L2", "L1"])
def test_regularization(reg, xp):
    batches = make_batches("reg", n_batches=2)
    solver = tiny_solver("SGD", key="reg", momentum=0.5, weight_decay=0.05,
                         regularization_type=reg)
    expected, _ = reference("SGD", batches, 4, momentum=F32(0.5), weight_decay=F32(0.05),
                            reg=reg)
    run_and_compare(solver, expected, 4)


def test_l1_by_hand(xp):
    batches = make_batches("l1", n_batches=1)
    solver = tiny_solver("SGD", key="l1", weight_decay=0.1, regularization_type="L1",
                         net_kwargs=dict(decay_b=0.0))
    gw, gb, _ = grads(W0, B0, batches[0])
    solver.step(1)
    w, b = params(solver)
    np.testing.assert_allclose(w, W0 - F32(0.1) * (gw + F32(0.1) * np.sign(W0)), rtol=1e-12)
    np.testing.assert_allclose(b, B0 - 2 * F32(0.1) * gb, rtol=1e-12)


def test_unknown_regularization_type(xp):
    make_batches("badreg", n_batches=1)
    solver = tiny_solver("SGD", key="badreg", weight_decay=0.1, regularization_type="L3")
    with pytest.raises(SolverError, match="Unknown regularization type: L3"):
        solver.step(1)
    # without weight decay Caffe never looks at the type
    ok = tiny_solver("SGD", key="badreg", regularization_type="L3")
    ok.step(1)


def test_lr_mult_and_decay_mult(xp):
    batches = make_batches("mult", n_batches=2)
    kw = dict(lr_w=0.5, lr_b=0.0, decay_w=3.0, decay_b=2.0)
    solver = tiny_solver("SGD", key="mult", momentum=0.9, weight_decay=0.01, net_kwargs=kw)
    expected, _ = reference("SGD", batches, 3, momentum=F32(0.9), weight_decay=F32(0.01),
                            lr_mult=(0.5, 0.0), decay_mult=(3.0, 2.0))
    run_and_compare(solver, expected, 3)
    np.testing.assert_array_equal(params(solver)[1], B0)   # lr_mult 0


def test_lr_policy_drives_updates(xp):
    batches = make_batches("policy", n_batches=1)
    solver = tiny_solver("SGD", key="policy", lr_policy="step", gamma=0.5, stepsize=1)
    before = params(solver)[0]
    solver.step(1)
    gw, _, _ = grads(W0, B0, batches[0])
    np.testing.assert_allclose(params(solver)[0], before - F32(0.1) * gw, rtol=1e-12)
    before, b = params(solver)
    gw, _, _ = grads(before, b, batches[0])
    solver.step(1)
    np.testing.assert_allclose(params(solver)[0], before - F32(0.1) * 0.5 * gw, rtol=1e-10)
    assert solver.current_step == 1


def test_test_nets_share_weights(loglines):
    make_batches("train", n_batches=2)
    test_batches = make_batches("test", n_batches=2, seed=1)
    solver = tiny_solver("SGD", key="train", test_key="test", test_iter=[2],
                         test_interval=2, momentum=0.9)
    assert len(solver.test_nets) == 1
    test_net = solver.test_nets[0]
    assert test_net.phase == caffe_pb2.TEST
    for a, b in zip(test_net.params["ip"], solver.net.params["ip"]):
        assert a is b
    solver.step(3)
    np.testing.assert_array_equal(test_net.params["ip"][0].data,
                                  solver.net.params["ip"][0].data)
    # the tests at iterations 0 and 2 ran on the weights of that moment
    tests = [line for line in loglines if "Testing net" in line]
    assert tests == ["Iteration 0, Testing net (#0)", "Iteration 2, Testing net (#0)"]
    outputs = solver.test(0)
    w, b = (p.data for p in solver.net.params["ip"])
    expected = np.mean([grads(w, b, batch)[2] for batch in test_batches])
    assert outputs["loss"] == pytest.approx(expected, rel=1e-6)
    line = [x for x in loglines if x.startswith("    Test net output #0")][-1]
    assert line == "    Test net output #0: loss = %g (* 1 = %g loss)" % (
        np.float32(expected), np.float32(expected))


def test_test_initialization_false(loglines):
    make_batches("ti", n_batches=2)
    solver = tiny_solver("SGD", key="ti", test_iter=[1], test_interval=2,
                         test_initialization=False)
    solver.step(3)
    tests = [line for line in loglines if "Testing net" in line]
    assert tests == ["Iteration 2, Testing net (#0)"]


def test_test_compute_loss(loglines):
    make_batches("tcl", n_batches=2)
    solver = tiny_solver("SGD", key="tcl", test_iter=[2], test_interval=1,
                         test_compute_loss=True)
    solver.step(1)
    assert any(line.startswith("Test loss: ") for line in loglines)


def test_train_state_and_test_state():
    make_batches("st", n_batches=1)
    solver = tiny_solver("SGD", key="st", test_iter=[1, 1], test_interval=1)
    solver.param.train_state.stage.append("x")
    p = caffe_pb2.SolverParameter()
    p.CopyFrom(solver.param)
    p.train_state.level = 3
    p.test_state.add().stage.append("a")
    p.test_state.add().level = 7
    s = SGDSolver(p)
    assert len(s.test_nets) == 2
    assert s.net._param.state.level == 3
    assert list(s.test_nets[0]._param.state.stage) == ["a"]
    assert s.test_nets[1]._param.state.level == 7
    assert all(n._param.state.phase == caffe_pb2.TEST for n in s.test_nets)


def test_average_loss_smoothing(loglines):
    batches = make_batches("avg", n_batches=5)
    solver = tiny_solver("SGD", key="avg", average_loss=3, display=1, momentum=0.9)
    _, losses = reference("SGD", batches, 6, momentum=F32(0.9))
    solver.step(6)
    shown = [float(m.group(1)) for m in
             (re.match(r"^Iteration \d+ \(.* iter/s, .*s/1 iters\), loss = (\S+)$", line)
              for line in loglines) if m]
    expected = [np.mean(losses[max(0, k - 2):k + 1]) for k in range(6)]
    np.testing.assert_allclose(shown, expected, rtol=2e-5)
    assert solver.smoothed_loss == pytest.approx(expected[-1], rel=1e-6)
    assert len(solver.losses) == 3


def test_display_lines(loglines):
    make_batches("disp", n_batches=2)
    solver = tiny_solver("SGD", key="disp", display=2, base_lr=0.01)
    solver.step(4)
    lr_lines = [line for line in loglines if ", lr = " in line]
    assert lr_lines == ["Iteration 0, lr = 0.01", "Iteration 2, lr = 0.01"]
    iters = [line for line in loglines if re.match(r"^Iteration \d+ \(", line)]
    assert [line.split()[1] for line in iters] == ["0", "2"]
    train = [line for line in loglines if "Train net output" in line]
    assert len(train) == 2
    assert re.match(r"^    Train net output #0: loss = (\S+) \(\* 1 = \1 loss\)$", train[0])


def test_display_zero_logs_nothing(loglines):
    make_batches("quiet", n_batches=2)
    tiny_solver("SGD", key="quiet").step(3)
    assert not any(", lr = " in line or "Train net output" in line for line in loglines)


def test_callbacks_and_apply_update():
    batches = make_batches("cb", n_batches=1)
    solver = tiny_solver("SGD", key="cb")
    events = []
    solver.add_callback(lambda: events.append("start"), lambda: events.append("grads"))

    class Obj:
        def on_start(self):
            events.append("obj_start")

        def on_gradients_ready(self):
            events.append("obj_grads")
    solver.add_callback(Obj())
    solver.step(2)
    assert events == ["start", "obj_start", "grads", "obj_grads"] * 2
    with pytest.raises(TypeError):
        solver.add_callback(object())
    # pycaffe-style manual loop: forward/backward, then apply_update (iter unchanged)
    manual = tiny_solver("SGD", key="cb")
    manual.net.clear_param_diffs()
    manual.net.forward_backward()
    manual.apply_update()
    assert manual.iter == 0
    gw, _, _ = grads(W0, B0, batches[0])
    np.testing.assert_allclose(manual.net.params["ip"][0].data, W0 - F32(0.1) * gw,
                               rtol=1e-12)


def test_solve_runs_to_max_iter(loglines):
    make_batches("solve", n_batches=2)
    solver = tiny_solver("SGD", key="solve", max_iter=4, display=2, test_iter=[1],
                         test_interval=2, snapshot_after_train=False)
    solver.solve()
    assert solver.iter == 4
    assert loglines[-1] == "Optimization Done."
    assert "Iteration 4, Testing net (#0)" in loglines
    assert any(re.match(r"^Iteration 4, loss = \S+$", line) for line in loglines)


def test_get_solver_from_file_and_legacy_solver_type(tmp_path, monkeypatch):
    make_batches("file", n_batches=1)
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(text.format_text(solver_data.tiny_net_param("file")))
    (tmp_path / "solver.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nmomentum: 0.9\n'
        'solver_type: NESTEROV\n')
    (tmp_path / "adam.prototxt").write_text(
        'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\ntype: "Adam"\n')
    monkeypatch.chdir(tmp_path)          # Caffe reads `net` relative to the cwd
    s = get_solver(str(tmp_path / "solver.prototxt"))
    assert type(s) is NesterovSolver and s.param.type == "Nesterov"
    assert type(get_solver(str(tmp_path / "adam.prototxt"))) is AdamSolver
    assert type(SGDSolver(str(tmp_path / "adam.prototxt"))) is SGDSolver
    legacy = caffe_pb2.SolverParameter()
    legacy.net_param.CopyFrom(solver_data.tiny_net_param("file"))
    legacy.solver_type = caffe_pb2.SolverParameter.ADAGRAD
    assert type(get_solver(legacy)) is AdaGradSolver


def test_action_request_stop_and_snapshot(monkeypatch):
    make_batches("act", n_batches=2)
    solver = tiny_solver("SGD", key="act", max_iter=10, snapshot_after_train=False)
    snaps = []
    monkeypatch.setattr(solver, "snapshot", lambda: snaps.append(solver.iter))
    actions = iter(["none", "snapshot", "none", "stop"])
    solver.action_request = lambda: next(actions, "none")
    solver.solve()
    assert solver.iter == 4 and snaps == [2] and solver.requested_early_exit


def test_snapshot_every_n_iterations(monkeypatch, tmp_path):
    make_batches("snapn", n_batches=2)
    solver = tiny_solver("SGD", key="snapn", snapshot=2,
                         snapshot_prefix=str(tmp_path / "tiny"), max_iter=5)
    snaps = []
    monkeypatch.setattr(solver, "snapshot", lambda: snaps.append(solver.iter))
    solver.solve()
    assert snaps == [2, 4, 5]          # and snapshot_after_train at 5
