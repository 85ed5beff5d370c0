"""The oneDNN engine (cpu/onednn, cpu/onednn_conv, layers/_conv_onednn): the
constants against the library's own names, the three convolution directions
against the float64 GEMM path on stride / pad / dilation / group / 1-D and 3-D
geometries, accumulation into the diffs, execution from another thread, and
the engine selection (CAFFE, LOWBIT_ONEDNN=0, float64)."""
import threading

import numpy as np
import pytest

from support.helpers import build_layer
from pycaffe_lowbit.cpu import onednn, onednn_conv
from pycaffe_lowbit.layers import _conv_onednn

pytestmark = pytest.mark.skipif(not onednn.available(),
                                reason="oneDNN not loaded (pip install onednn-cpu-gomp)")


def _name(fn, value):
    return getattr(onednn.lib(), fn)(value).decode()


def test_constants_are_the_librarys():
    """The wheel has no headers: each constant written in cpu/onednn.py names
    what the library's dnnl_*2str calls it."""
    d = onednn
    assert _name("dnnl_dt2str", d.F32) == "f32"
    assert _name("dnnl_fmt_tag2str", d.FORMAT_ANY) == "any"
    assert _name("dnnl_engine_kind2str", d.CPU) == "cpu"
    assert _name("dnnl_scratchpad_mode2str", d.SCRATCHPAD_USER) == "user"
    assert _name("dnnl_status2str", 0) == "success"
    props = {d.FORWARD_TRAINING: "forward_training", d.FORWARD_INFERENCE: "forward_inference",
             d.BACKWARD: "backward", d.BACKWARD_DATA: "backward_data",
             d.BACKWARD_WEIGHTS: "backward_weights"}
    for value, name in props.items():
        assert _name("dnnl_prop_kind2str", value) == name
    algs = {d.CONVOLUTION_DIRECT: "convolution_direct",
            d.DECONVOLUTION_DIRECT: "deconvolution_direct", d.POOLING_MAX: "pooling_max",
            d.POOLING_AVG_INCLUDE_PADDING: "pooling_avg_include_padding",
            d.POOLING_AVG_EXCLUDE_PADDING: "pooling_avg_exclude_padding",
            d.ELTWISE_RELU: "eltwise_relu"}
    for value, name in algs.items():
        assert _name("dnnl_alg_kind2str", value) == name


def test_queries_and_arguments_answer():
    """The query and DNNL_ARG_* numbers (no 2str for them): each argument a
    convolution takes has a descriptor of its tensor's size, the implementation
    string reads, and the user-scratchpad mode holds."""
    plan = onednn_conv.plan(2, 8, (9, 9), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, True)
    fwd = plan._forward_parts()[0]
    assert fwd.md(onednn.ARG_SRC).nbytes >= 2 * 8 * 81 * 4
    assert fwd.md(onednn.ARG_WEIGHTS).nbytes >= 16 * 8 * 9 * 4
    assert fwd.md(onednn.ARG_BIAS).nbytes == 16 * 4
    assert fwd.md(onednn.ARG_DST).nbytes >= 2 * 16 * 81 * 4
    assert fwd.md(onednn.ARG_DIFF_SRC).nbytes == 0      # not an argument of the forward
    assert fwd.impl and " " not in fwd.impl
    bwd = plan._backward_weights_parts(True)[0]
    assert bwd.md(onednn.ARG_DIFF_BIAS).nbytes == 16 * 4
    assert bwd.md(onednn.ARG_DIFF_WEIGHTS).nbytes >= 16 * 8 * 9 * 4
    assert plan._backward_data_parts()[0].md(onednn.ARG_DIFF_SRC).nbytes >= 2 * 8 * 81 * 4
    mode = onednn.ctypes.c_int()
    attr = onednn.user_scratchpad_attr()
    onednn.lib().dnnl_primitive_attr_get_scratchpad_mode(attr, onednn.ctypes.byref(mode))
    onednn.lib().dnnl_primitive_attr_destroy(attr)
    assert mode.value == onednn.SCRATCHPAD_USER


GEOMETRIES = [   # (x shape, convolution_param text)
    ((2, 3, 7, 9), "num_output: 4 kernel_size: 3 pad: 1"),
    ((2, 4, 8, 7), "num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2"),
    ((3, 6, 9, 10), "num_output: 4 kernel_size: 3 stride: 2 dilation: 2 group: 2"),
    ((2, 16, 11, 11), "num_output: 32 kernel_size: 5 stride: 3 pad: 2"),
    ((2, 3, 6, 6), "num_output: 5 kernel_size: 2 stride: 3"),  # the floor drops a row
    ((2, 4, 9, 8), "num_output: 8 kernel_h: 3 kernel_w: 1 stride_h: 2 stride_w: 1 "
                   "pad_h: 0 pad_w: 1 bias_term: false"),
    ((2, 32, 6, 6), "num_output: 32 kernel_size: 3 pad: 1 group: 32"),   # depthwise
    ((2, 3, 12), "num_output: 4 kernel_size: 3 stride: 2 pad: 1"),       # 1-D
    ((2, 2, 5, 6, 4), "num_output: 3 kernel_size: 3 pad: 1 dilation: 1"),  # 3-D
    ((1, 16, 14, 14), "num_output: 16 kernel_size: 1 stride: 2"),  # 1x1, stride 2
]


def _pair(shape, conv_text, layer_type="Convolution", extra=""):
    """The same layer in float32 (oneDNN) and float64 (the GEMM path), equal weights."""
    rng = np.random.default_rng(len(shape) * 7 + shape[1])
    x = rng.standard_normal(shape)
    text = ('type: "%s" convolution_param { %s weight_filler { type: "gaussian" } '
            'bias_filler { type: "gaussian" } } %s' % (layer_type, conv_text, extra))
    l32, b32, t32 = build_layer(text, [x], dtype=np.float32)
    l64, b64, t64 = build_layer(text, [x], dtype=np.float64)
    for p32, p64 in zip(l32.blobs, l64.blobs):
        p32.data[...] = p64.data
    return (l32, b32, t32), (l64, b64, t64), rng


def _run(layer, bottom, top, dy, repeat=1):
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    for p in layer.blobs:
        p.diff[...] = 0
    for _ in range(repeat):
        top[0].diff[...] = dy
        layer.backward(top, [True], bottom)
    return [np.array(top[0].data), np.array(bottom[0].diff)] + [np.array(p.diff)
                                                                  for p in layer.blobs]


def _assert_rel(ours, ref, what, tol=2e-6):
    scale = max(np.abs(ref).max(), 1e-30)
    assert np.abs(ours - ref).max() / scale <= tol, what


@pytest.mark.parametrize("shape,conv_text", GEOMETRIES)
def test_three_directions_match_float64(shape, conv_text):
    """y, dx, dW and db of the oneDNN engine (float32) equal the float64 GEMM
    path's to float32 rounding, the parameter diffs summed over two backwards
    (Caffe's accumulation: iter_size, shared params)."""
    (l32, b32, t32), (l64, b64, t64), rng = _pair(shape, conv_text)
    assert _conv_onednn._plan(l32, b32[0].data) is not None      # oneDNN takes it
    assert _conv_onednn._plan(l64, b64[0].data) is None          # float64: GEMM path
    l64.reshape(b64, t64)
    dy = rng.standard_normal(t64[0].shape)
    ours = _run(l32, b32, t32, dy, repeat=2)
    ref = _run(l64, b64, t64, dy, repeat=2)
    for name, a, r in zip(["y", "dx", "dW", "db"], ours, ref):
        _assert_rel(a, r, name)


@pytest.mark.parametrize("shape,conv_text", [
    ((2, 4, 5, 6), "num_output: 3 kernel_size: 3 stride: 2 pad: 1"),
    ((2, 4, 4, 4), "num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 2"),
    ((2, 3, 5, 5), "num_output: 2 kernel_size: 3 dilation: 2 bias_term: false"),
    ((2, 2, 6), "num_output: 3 kernel_size: 3 stride: 3"),
])
def test_deconvolution_matches_float64(shape, conv_text):
    """Deconvolution as the transposed convolution: y, dx, dW, db."""
    (l32, b32, t32), (l64, b64, t64), rng = _pair(shape, conv_text, "Deconvolution")
    assert _conv_onednn._plan(l32, b32[0].data) is not None
    l64.reshape(b64, t64)
    dy = rng.standard_normal(t64[0].shape)
    for name, a, r in zip(["y", "dx", "dW", "db"], _run(l32, b32, t32, dy, repeat=2),
                          _run(l64, b64, t64, dy, repeat=2)):
        _assert_rel(a, r, name)


@pytest.mark.parametrize("layer_type,extra", [
    ("BinaryConvolution", ""), ("TernaryConvolution", ""),
    ("QNNConvolution", 'qnn_weight_param { nb: 2 }'),
    ("WeightSearchConvolution", 'weight_search_param { value_set: "1b" } phase: TEST')])
def test_quantized_convolutions_run_on_their_effective_weights(layer_type, extra):
    (l32, b32, t32), (l64, b64, t64), rng = _pair(
        (2, 4, 8, 8), "num_output: 6 kernel_size: 3 pad: 1", layer_type, extra)
    assert _conv_onednn._plan(l32, b32[0].data) is not None
    l64.reshape(b64, t64)
    dy = rng.standard_normal(t64[0].shape)
    for name, a, r in zip(["y", "dx", "dW", "db"], _run(l32, b32, t32, dy),
                          _run(l64, b64, t64, dy)):
        _assert_rel(a, r, name, tol=1e-5)


def test_runs_from_another_thread_than_its_creator():
    """The user-scratchpad mode: a plan created here runs in a new Python thread."""
    plan = onednn_conv.plan(2, 16, (10, 10), 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, True)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    here = plan.forward(x, w, b)
    out = {}
    worker = threading.Thread(target=lambda: out.update(
        y=plan.forward(x, w, b), grads=plan.backward(x, here, w, True, True, True)))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(out["y"], here)
    assert all(np.isfinite(g).all() for g in out["grads"])


def test_engine_caffe_and_the_switch_keep_the_gemm_path(monkeypatch):
    text = ('type: "Convolution" convolution_param { num_output: 4 kernel_size: 3 '
            'engine: %s }')
    x = np.ones((1, 2, 5, 5))
    layer, bottom, _ = build_layer(text % "CAFFE", [x], dtype=np.float32)
    assert _conv_onednn._plan(layer, bottom[0].data) is None
    for engine in ("DEFAULT", "MKLDNN", "MKL2017"):
        layer, bottom, _ = build_layer(text % engine, [x], dtype=np.float32)
        assert _conv_onednn._plan(layer, bottom[0].data) is not None, engine
    monkeypatch.setenv("LOWBIT_ONEDNN", "0")
    assert _conv_onednn._plan(layer, bottom[0].data) is None
    assert onednn_conv.plan(1, 2, (5, 5), 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, True) is None


def test_output_size_is_caffes_floor_rule():
    for size, k, s, p, d in [(6, 2, 3, 0, 1), (7, 3, 2, 1, 1), (10, 3, 3, 2, 2)]:
        plan = onednn_conv.plan(1, 1, (size,), 1, (k,), (s,), (p,), (d,), 1, False)
        assert plan.y_shape[2] == (size + 2 * p - (d * (k - 1) + 1)) // s + 1


def test_a_missing_library_says_so_once_and_the_layer_keeps_its_path(monkeypatch, caplog):
    class Absent:
        lib, error = None, "libdnnl.so.3 not loaded (test)"
    monkeypatch.setattr(onednn, "_LIB", Absent())
    monkeypatch.setitem(onednn._STATE, "said", False)
    x = np.ones((1, 2, 5, 5))
    with caplog.at_level("INFO", logger="pycaffe_lowbit"):
        layer, bottom, top = build_layer('type: "Convolution" convolution_param { '
                                         'num_output: 4 kernel_size: 3 }', [x], dtype=np.float32)
        layer.forward(bottom, top)
        layer.forward(bottom, top)
    assert _conv_onednn._plan(layer, bottom[0].data) is None
    lines = [r.getMessage() for r in caplog.records if "oneDNN" in r.getMessage()]
    assert lines == ["oneDNN CPU engine off: libdnnl.so.3 not loaded (test); "
                     "using the NumPy/OpenBLAS path"]
    assert top[0].data.shape == (1, 4, 3, 3)


@pytest.mark.parametrize("layer_type", ["Convolution", "Deconvolution"])
def test_outputs_are_written_into_the_blobs_arrays(layer_type):
    """As Caffe writes into a blob's memory: the top's array and the bottom's
    diff array stay the same objects across passes (a view taken before sees
    the new values), with the values of a fresh computation."""
    (l32, b32, t32), (l64, b64, t64), rng = _pair(
        (2, 4, 5, 6), "num_output: 3 kernel_size: 3 stride: 2 pad: 1", layer_type)
    l32.reshape(b32, t32)
    l64.reshape(b64, t64)
    y_array, dx_array = t32[0].data, b32[0].diff
    for _ in range(2):
        x, dy = rng.standard_normal(b64[0].shape), rng.standard_normal(t64[0].shape)
        b32[0].data[...] = b64[0].data[...] = x
        ours = _run(l32, b32, t32, dy)
        ref = _run(l64, b64, t64, dy)
        assert t32[0].data is y_array and b32[0].diff is dx_array
        _assert_rel(y_array, ref[0], "y")
        _assert_rel(dx_array, ref[1], "dx")
        _assert_rel(ours[2], ref[2], "dW")


@pytest.mark.parametrize("env,expected", [
    ({}, "True 3000"),
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "False None"),
    ({"GOMP_SPINCOUNT": "77"}, "False 77"),
])
def test_openmp_spins_briefly_unless_the_environment_says(env, expected):
    """Before GNU OpenMP loads, GOMP_SPINCOUNT is set to a brief spin unless the
    user set it or OMP_WAIT_POLICY; once libgomp is loaded, nothing is touched."""
    import os
    import subprocess
    import sys
    code = ("import os\nfrom pycaffe_lowbit.cpu import onednn_lib, onednn\n"
            "print(onednn_lib.brief_openmp_spin(), os.environ.get('GOMP_SPINCOUNT'))\n"
            "os.environ.pop('GOMP_SPINCOUNT', None) if onednn_lib.SPIN_COUNT == "
            "os.environ.get('GOMP_SPINCOUNT') else None\n"
            "onednn.threads()\nprint(onednn_lib.brief_openmp_spin())\n")
    child_env = {k: v for k, v in os.environ.items()
                 if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    child_env.update(env)
    out = subprocess.run([sys.executable, "-c", code], env=child_env, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[0] == expected
    assert out[1] == "False"
