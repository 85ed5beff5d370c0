"""bench/bench_cpu.py without timing anything: argument parsing, the Input swap
of a prototxt, the parsing of ``caffe time``'s log, and the lines printed when
official Caffe is missing or cannot run a net (no Caffe, no torch needed)."""
import os
import stat
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench")
sys.path.insert(0, os.path.normpath(BENCH))

import _caffe  # noqa: E402
import _nets  # noqa: E402
import bench_cpu  # noqa: E402

CAFFE_LOG = """I1202 15:17:50.1 123 caffe.cpp:366] Testing for 2 iterations.
I1202 15:17:50.3 123 caffe.cpp:394] Iteration: 1 forward-backward time: 201 ms.
I1202 15:17:50.5 123 caffe.cpp:394] Iteration: 2 forward-backward time: 198.5 ms.
I1202 15:17:50.5 123 caffe.cpp:397] Average time per layer:
I1202 15:17:50.5 123 caffe.cpp:400]      conv1\tforward: 11.5 ms.
I1202 15:17:50.5 123 caffe.cpp:403]      conv1\tbackward: 13.25 ms.
I1202 15:17:50.5 123 caffe.cpp:412] Average Forward-Backward: 199.75 ms.
"""


def test_parse_args():
    args = bench_cpu.parse_args([])
    assert args.nets == list(_nets.NETS) and args.threads == [1] and args.rounds == 3
    assert args.iters == 0 and args.caffe is None and args.layers == 0
    args = bench_cpu.parse_args(["--nets", "lenet_hwgq,alexnet", "--threads", "1,2",
                                 "--rounds", "2", "--layers", "5", "--caffe", "/x/caffe"])
    assert args.nets == ["lenet_hwgq", "alexnet"] and args.threads == [1, 2]
    assert (args.rounds, args.layers, args.caffe) == (2, 5, "/x/caffe")
    for bad in (["--nets", "nope"], ["--threads", "0"], ["--rounds", "0"], ["--threads", "a"],
                ["--iters", "-1"]):
        with pytest.raises(SystemExit):
            bench_cpu.parse_args(bad)
    assert bench_cpu._without_threads(["--threads", "1,2", "--rounds", "2", "--threads=3"]) \
        == ["--rounds", "2"]


def test_input_swap_of_lenet_hwgq():
    from pycaffe_lowbit.formats.text import parse_net_text
    param, batch, solver = _nets.load_param("lenet_hwgq")
    assert batch == 64 and solver is None
    inputs = [lp for lp in param.layer if lp.type == "Input"]
    assert len(inputs) == 2 and not any(lp.type in _nets.DATA_LAYERS for lp in param.layer)
    for lp in inputs:
        assert [list(s.dim) for s in lp.input_param.shape] == [[64, 1, 28, 28], [64]]
        assert list(lp.top) == ["data", "label"] and len(lp.include) == 1
    assert _nets.fork_layers(param) == ["BinaryConvolution", "BinaryInnerProduct", "Quant"]
    again = parse_net_text(_nets.caffe_text(param))       # what Caffe would read
    assert [lp.type for lp in again.layer] == [lp.type for lp in param.layer]


def test_solver_net_takes_the_batch_from_its_file():
    param, batch, solver = _nets.load_param("digits_bwn_solver")
    assert batch == 64 and solver is not None and solver.momentum == pytest.approx(0.9)
    shapes = [list(lp.input_param.shape[0].dim) for lp in param.layer if lp.type == "Input"]
    assert shapes == [[64, 1, 16, 16]] * 2


def test_parse_caffe_time():
    out = _caffe.parse_time(CAFFE_LOG)
    assert out["iters"] == [0.201, 0.1985]
    assert out["average"] == pytest.approx(0.19975)
    assert out["layers"] == {"conv1": [pytest.approx(0.0115), pytest.approx(0.01325)]}


def test_caffe_missing_or_unable(tmp_path, capsys):
    param, _, _ = _nets.load_param("lenet_hwgq")
    args = bench_cpu.parse_args(["--caffe", str(tmp_path / "no" / "caffe")])
    assert bench_cpu.caffe_status(args, param) == (
        None, "Caffe: not built; run ../shared/refcaffe/build.sh")
    fake = tmp_path / "caffe"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    args = bench_cpu.parse_args(["--caffe", str(fake)])
    binary, note = bench_cpu.caffe_status(args, param)
    assert binary is None
    assert note == ("Caffe cannot run BinaryConvolution, BinaryInnerProduct, Quant: "
                    "bar is PyTorch")
    float_net = _nets.swap_inputs(param.__class__(), 1, (1, 2, 2))
    assert bench_cpu.caffe_status(args, float_net) == (str(fake), None)
    runner = _caffe.CaffeRunner(str(fake), _nets.caffe_text(param), 1)
    try:
        with pytest.raises(RuntimeError, match="caffe time failed"):
            runner.run(1)
    finally:
        runner.close()
    assert runner.path is None


def test_summary_says_n_a_without_baselines(capsys):
    args = bench_cpu.parse_args(["--rounds", "1"])
    res = {"name": "lenet_hwgq", "batch": 64, "ours": [0.03], "caffe": [], "torch": [],
           "caffe_note": _caffe.NOT_BUILT, "torch_note": "PyTorch: not installed",
           "check": [], "layer_check": None, "caffe_layers": None, "iters": 4}
    bench_cpu.summary([res], 1, args)
    out = capsys.readouterr().out
    assert "| lenet_hwgq | 64    | n/a   | 30.0 ms | n/a" in out
    assert "(iterations per round: lenet_hwgq 4)" in out
    assert "Caffe: not built; run ../shared/refcaffe/build.sh" in out
    assert "geomean ours/Caffe <= 0.8: n/a (no Caffe figure)" in out
    assert "ours/PyTorch <= 1.0 per net: n/a (no PyTorch figure)" in out
