"""solver.cu: the fused update of each rule equals the per-param NumPy update
bit for bit (to rounding where gradient clipping's norm is summed) (params of odd sizes, lr_mult / decay_mult including 0, L1 and L2,
gradient clipping, iter_size, clip_data; float32 and float64); the param table
(offsets, addresses, empty params) and the sum of squares; the per-param path
stays for an overridden rule; every kernel of the family is launched. The
closed forms and official Caffe's runs take the fused path in tests/solvers and
tests/golden (the ``kernels`` backend of ``xp``)."""
import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.kernels import solver as ksolver
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import SGDSolver, get_solver
from support.kernel_coverage import every_kernel, launches

NET = """
name: "odd"
layer { name: "data" type: "DummyData" top: "x" top: "y"
        dummy_data_param { shape { dim: 3 dim: 5 } shape { dim: 3 dim: 2 }
                           data_filler { type: "gaussian" } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "h"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 7 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "h" top: "h" }
layer { name: "ip2" type: "InnerProduct" bottom: "h" top: "out"
        param { lr_mult: 0.5 decay_mult: 3 clip_data: 0.3 } param { lr_mult: 0 decay_mult: 1 }
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "out" bottom: "y" top: "loss" }
"""
RULES = {"SGD": dict(momentum=0.9), "Nesterov": dict(momentum=0.9), "AdaGrad": dict(),
         "RMSProp": dict(rms_decay=0.95), "AdaDelta": dict(momentum=0.95, base_lr=1.0),
         "Adam": dict(momentum=0.9, momentum2=0.999, delta=1e-8)}
EXTRAS = {"l2": dict(weight_decay=0.01),
          "l1_clip_iter2": dict(weight_decay=0.02, regularization_type="L1",
                                clip_gradients=0.05, iter_size=2)}


def _solver(rule, dtype, **fields):
    backend.set_default_dtype(dtype)
    p = caffe_pb2.SolverParameter()
    p.net_param.CopyFrom(parse_net_text(NET))
    p.type = rule
    p.base_lr = 0.05
    p.lr_policy = "step"
    p.gamma = 0.5
    p.stepsize = 2
    p.random_seed = 11
    p.max_iter = 100
    for name, value in fields.items():
        setattr(p, name, value)
    return get_solver(p)


def _state(solver):
    return [backend.to_numpy(a).copy() for a in
            [b.data for b in solver.net.learnable_params]
            + [b.diff for b in solver.net.learnable_params]
            + [h.data for h in solver.history]]


def _bits(arrays):
    return [a.view(np.uint8) for a in arrays]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", sorted(EXTRAS))
@pytest.mark.parametrize("rule", sorted(RULES))
def test_fused_update_equals_the_numpy_update(rule, extra, dtype):
    fields = dict(RULES[rule], **EXTRAS[extra])
    ref = _solver(rule, dtype, **fields)
    ref.step(5)
    fused = _solver(rule, dtype, **fields)
    with launches() as seen:
        fused.step(5)
    kernel = "lowbit_%s_update" % rule.lower()
    assert ("solver", kernel) in seen
    assert (("solver", "lowbit_params_sumsq") in seen) == ("clip_gradients" in fields)
    if "clip_gradients" in fields:
        # the norm's float64 sum runs in another order: the scale may move by an ulp
        for a, b in zip(_state(fused), _state(ref)):
            np.testing.assert_allclose(a, b, rtol=1e-10 if dtype == np.float64 else 1e-5,
                                       atol=1e-12 if dtype == np.float64 else 1e-7)
    else:
        for a, b in zip(_bits(_state(fused)), _bits(_state(ref))):
            np.testing.assert_array_equal(a, b)
    clip = dtype(np.float32(0.3))                    # clip_data of ip2's weights
    assert np.all(np.abs(backend.to_numpy(fused.net.params["ip2"][0].data)) <= clip)
    initial = _solver(rule, dtype, **fields).net.params["ip2"][1].data   # lr_mult 0
    np.testing.assert_array_equal(backend.to_numpy(fused.net.params["ip2"][1].data),
                                  backend.to_numpy(initial))


def test_clip_gradients_logs_as_the_numpy_path(loglines):
    lines = []
    for emulated in (False, True):
        del loglines[:]
        solver = _solver("SGD", np.float32, momentum=0.9, clip_gradients=0.05, display=1)
        if emulated:
            with launches():
                solver.step(2)
        else:
            solver.step(2)
        lines.append([x for x in loglines if x.startswith("Gradient clipping")])
    assert len(lines[0]) == 2 and lines[1] == lines[0]


def _table(sizes, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {k: [rng.standard_normal(s).astype(dtype) for s in sizes]
              for k in ("data", "diff", "hist")}
    return arrays, ksolver.ParamTable(arrays)


@pytest.mark.parametrize("sizes", [[0], [3, 0, 5], [0, 0, 7, 0], [1], [513, 2, 1030]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_table_and_sum_of_squares_with_empty_and_odd_params(sizes, dtype):
    arrays, table = _table(sizes, dtype)
    assert table.n == sum(sizes) and table.count == len(sizes)
    np.testing.assert_array_equal(table.offsets, np.concatenate([[0], np.cumsum(sizes)]))
    with launches():
        total = ksolver.sum_of_squares(table)
    exact = sum(float((d.astype(np.float64) ** 2).sum()) for d in arrays["diff"])
    assert total == pytest.approx(exact, rel=1e-13, abs=0)


def test_sgd_kernel_over_a_table_with_empty_params():
    sizes = [4, 0, 3, 0]
    arrays, table = _table(sizes, np.float64)
    before = {k: [a.copy() for a in v] for k, v in arrays.items()}
    per_param = table.per_param([0.1, 0.2, 0.3, 0.4] + [0.0] * 4 + [-1.0] * 4)
    reg = table.per_param([0] * 4, "u1")
    with launches():
        ksolver.update("sgd", table, per_param, reg, 1.0, 1.0, (0.9,))
    with pytest.raises(ValueError, match="rule adam updates 2 histories"):
        ksolver.update("adam", table, per_param, reg, 1.0, 1.0, (0.9, 0.99, 1e-8))
    for p, rate in zip(range(4), (0.1, 0.2, 0.3, 0.4)):
        h = rate * before["diff"][p] + 0.9 * before["hist"][p]
        np.testing.assert_array_equal(arrays["hist"][p], h)
        np.testing.assert_array_equal(arrays["diff"][p], h)
        np.testing.assert_array_equal(arrays["data"][p], before["data"][p] - h)


def test_table_refuses_what_the_kernels_cannot_take():
    good = [np.zeros(3, np.float32), np.zeros(2, np.float32)]
    assert ksolver.key({"data": good, "diff": good}) is not None
    assert ksolver.key({"data": good, "diff": [good[0], np.zeros(2)]}) is None    # dtypes
    assert ksolver.key({"data": good, "diff": [good[0], np.zeros(4, np.float32)[::2]]}) \
        is None                                                                  # strided
    assert ksolver.key({"data": good, "diff": [good[0], np.zeros(3, np.float32)]}) is None
    with pytest.raises(ValueError, match="one table"):
        ksolver.ParamTable({"data": [np.zeros(2, np.int32)], "diff": [np.zeros(2, np.int32)]})
    with pytest.raises(ValueError, match="kinds data, diff, hist, hist2 in order"):
        ksolver.ParamTable({"data": good, "diff": good, "hist2": good})


def test_the_table_is_reused_until_an_array_changes():
    solver = _solver("SGD", np.float32, momentum=0.9)
    with launches():
        solver.step(2)
        first = solver._fused_cache[1]
        solver.step(1)
        assert solver._fused_cache[1] is first
        w = solver.net.learnable_params[0]
        w.data = w.data.copy()                     # a new array: a new table
        solver.step(1)
    assert solver._fused_cache[1] is not first


class _Halved(SGDSolver):
    """A user rule: SGD at half the step (no kernel of its own)."""

    def compute_update_value(self, param_id, rate):
        super().compute_update_value(param_id, rate * 0.5)


def test_an_overridden_rule_keeps_the_per_param_path():
    solver = _Halved(_solver("SGD", np.float64, momentum=0.9).param)
    with launches() as seen:
        solver.step(2)
    assert not {k for k in seen if k[0] == "solver"}


def test_every_solver_kernel_is_used():
    with launches() as seen:
        for rule in RULES:
            _solver(rule, np.float32, clip_gradients=0.01, **RULES[rule]).step(1)
    assert every_kernel("solver") <= seen
