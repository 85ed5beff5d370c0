"""Divergence (``solver.nan_effect``): a non-finite loss, gradient or update
stops training before the update is applied, naming the iteration and where
it began; "snapshot" writes the last finite weights first; "none" is Caffe's
behaviour (train on). NaNs are injected by ``support.faults.NanAt`` at a known
call, so the expected iteration and layer are known."""
import os

import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import divergence, get_solver

DATA = """
layer { name: "data" type: "DummyData" top: "x" top: "t"
        dummy_data_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 }
                           data_filler { type: "gaussian" std: %s }
                           data_filler { type: "gaussian" std: 1 } } }
"""
IP = """layer { name: "%s" type: "InnerProduct" bottom: "%s" top: "%s"
        inner_product_param { num_output: %d weight_filler { type: "gaussian" std: 0.5 } } }
"""
NAN = """layer { name: "nan" type: "Python" bottom: "%s" top: "%s"
        python_param { module: "support.faults" layer: "NanAt" param_str: "%s" } }
"""
LOSS = 'layer { name: "loss" type: "EuclideanLoss" bottom: "%s" bottom: "t" top: "loss" }\n'


def net_with_nan(when):
    """data -> ip1 -> nan (NaN at ``when``) -> ip2 -> loss."""
    return (DATA % 1 + IP % ("ip1", "x", "h", 3) + NAN % ("h", "g", when)
            + IP % ("ip2", "g", "y", 2) + LOSS % "y")


def make_solver(tmp_path, net, effect, **fields):
    fields = dict(dict(base_lr=0.01, lr_policy="fixed", max_iter=10, momentum=0.9,
                       random_seed=1, snapshot_prefix=str(tmp_path / "s")), **fields)
    p = caffe_pb2.SolverParameter(**fields)
    p.net_param.CopyFrom(parse_net_text(net))
    solver = get_solver(p)
    solver.nan_effect = effect
    return solver


def weights(solver):
    return [backend.to_numpy(b.data).copy() for b in solver.net.learnable_params]


def test_nan_output_stops_before_the_update(tmp_path, loglines):
    solver = make_solver(tmp_path, net_with_nan("forward:4"), "stop", snapshot=2)
    before = []
    solver.add_callback(lambda: before.append(weights(solver)), lambda: None)
    solver.solve()
    # forward call 4 is iteration 3: three updates applied, the fourth refused
    assert solver.iter == 3 and solver.requested_early_exit
    for a, b in zip(weights(solver), before[-1]):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in weights(solver))
    assert solver.diverged == (
        "Iteration 3: loss is nan; layer 'nan' (Python): output 'g' went non-finite; "
        "stopped (--nan_effect=stop); last snapshot: %s (resume with --snapshot %s)"
        % ((tmp_path / "s_iter_2.solverstate",) * 2))
    assert loglines[-2:] == [solver.diverged, "Optimization stopped: training diverged."]
    # no snapshot after training: the last finite one stays the last one
    assert sorted(os.listdir(tmp_path)) == ["s_iter_2.caffemodel", "s_iter_2.solverstate"]


def test_nan_gradient_names_where_the_backward_pass_made_it(tmp_path):
    solver = make_solver(tmp_path, net_with_nan("backward:2"), "stop")
    solver.solve()
    assert solver.iter == 1
    assert solver.diverged.startswith(
        "Iteration 1: a gradient is not finite; layer 'nan' (Python): gradient of bottom "
        "'h' went non-finite; stopped (--nan_effect=stop); last snapshot: none written")


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_non_finite_update_with_finite_gradients(tmp_path, xp):
    """base_lr 1e37 times a gradient > 34 overflows float32: the update is inf."""
    net = DATA % 30 + IP % ("ip", "x", "y", 2) + LOSS % "y"
    solver = make_solver(tmp_path, net, "stop", base_lr=1e37, momentum=0.0)
    start = weights(solver)
    solver.step(1)
    assert solver.iter == 0
    assert solver.diverged.startswith(
        "Iteration 0: the update of layer 'ip' (InnerProduct) param 0 is not finite "
        "(loss and gradients are); lower base_lr or clip_gradients; stopped")
    for a, b in zip(weights(solver), start):
        np.testing.assert_array_equal(a, b)


def test_the_checked_fused_update_equals_the_unchecked_one(tmp_path):
    """On the kernel path the fused kernel writes the update values, the
    solver checks them and applies them: the weights are those of the
    unchecked fused update, bit for bit."""
    from support.kernel_coverage import launches
    net = DATA % 1 + IP % ("ip", "x", "y", 2) + LOSS % "y"
    result = {}
    for effect in ("none", "stop"):
        with launches() as seen:
            solver = make_solver(tmp_path, net, effect)
            solver.step(3)
        assert ("solver", "lowbit_sgd_update") in seen and solver.diverged is None
        result[effect] = weights(solver)
    for a, b in zip(result["none"], result["stop"]):
        np.testing.assert_array_equal(a, b)


def test_snapshot_effect_writes_the_last_finite_weights(tmp_path):
    solver = make_solver(tmp_path, net_with_nan("forward:3"), "snapshot")
    solver.solve()
    assert solver.iter == 2
    assert "wrote a snapshot of the last finite weights; last snapshot: %s" \
        % (tmp_path / "s_iter_2.solverstate") in solver.diverged
    again = make_solver(tmp_path, net_with_nan("forward:100"), "stop")
    again.restore(str(tmp_path / "s_iter_2.solverstate"))
    for a, b in zip(weights(again), weights(solver)):
        np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path)) == ["s_iter_2.caffemodel", "s_iter_2.solverstate"]


def test_none_trains_on_as_caffe_and_checks_nothing(tmp_path, monkeypatch):
    def fail(*args):
        raise AssertionError("checked with nan_effect none")
    monkeypatch.setattr(divergence, "check_before_update", fail)
    monkeypatch.setattr(divergence, "check_update", fail)
    solver = make_solver(tmp_path, net_with_nan("forward:2"), "none", max_iter=4)
    solver.solve()
    assert solver.iter == 4 and solver.diverged is None
    assert not all(np.isfinite(w).all() for w in weights(solver))    # NaN weights, as Caffe
    assert "s_iter_4.caffemodel" in os.listdir(tmp_path)


def test_the_library_default_is_caffes():
    p = caffe_pb2.SolverParameter(base_lr=0.1, lr_policy="fixed", max_iter=1)
    p.net_param.CopyFrom(parse_net_text(DATA % 1 + IP % ("ip", "x", "y", 2) + LOSS % "y"))
    assert get_solver(p).nan_effect == "none"


@pytest.mark.parametrize("values, finite", [
    ([1.0, 2.0], True), ([1.0, np.nan], False), ([np.inf, -np.inf], False),
    ([3e38, 3e38], True),                       # the sum overflows, the values are finite
    ([], True)])
def test_all_finite(values, finite):
    assert divergence.all_finite(np.array(values, np.float32)) is finite
