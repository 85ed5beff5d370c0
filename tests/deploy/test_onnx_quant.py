"""Quantized ONNX exports checked by the toolchains' own runtimes: QONNX by
qonnx's cleanup, shape inference and executor; QDQ and its integer-op form
by onnxruntime (whose optimized graph must hold integer kernels). Each is
compared with our TEST-phase forward of the same net and input (see
``support.onnx_quant_cases`` for the per-quantizer tie rule)."""
import numpy as np
import pytest

from pycaffe_lowbit.layers.registry import layer_type_list
from support import onnx_quant_cases as cases

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
from pycaffe_lowbit.deploy import onnx_export  # noqa: E402
from pycaffe_lowbit.deploy.onnx_levels import ExportError  # noqa: E402

pytestmark = pytest.mark.skipif(
    not {"Quant", "BinaryConvolution", "QNNActivation", "WeightSearchConvolution"}
    <= set(layer_type_list()), reason="needs the low-bit layers")

MAX_TIE_FRACTION = 1e-3      # ties per quantized activation element, whole net
INTEGER_OPS = {"QLinearConv", "ConvInteger", "MatMulInteger", "QLinearMatMul"}


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in cases.SLOW else n for n in names]


def _export(tmp_path, name, quant):
    model, weights, x = cases.make_model(tmp_path, name)
    out = str(tmp_path / ("%s_%s.onnx" % (name, quant)))
    names = onnx_export.export_onnx(model, weights, out, quant=quant)
    net, ours = cases.our_forward(model, weights, x)
    return out, names, net, ours, x


@pytest.mark.parametrize("name", _params(sorted(cases.MODELS)))
def test_qonnx_export_runs_in_qonnx(tmp_path, name):
    pytest.importorskip("qonnx", reason="the check needs the qonnx package")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model
    path, names, net, ours, x = _export(tmp_path, name, "qonnx")
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert ops & {"BipolarQuant", "Quant"}
    assert all(n.domain == "qonnx.custom_op.general" for n in proto.graph.node
               if n.op_type in ("BipolarQuant", "Quant"))
    assert not ops & {"Where"} or "Greater" in ops      # only HWGQ's pre-map uses Where
    cleaned = cleanup_model(ModelWrapper(path))
    cleaned = cleaned.transform(InferShapes())
    for value in cleaned.graph.output:
        assert value.type.tensor_type.shape.dim, "no shape inferred for %s" % value.name
    values = execute_onnx(ModelWrapper(path).transform(InferShapes()), {"data": x},
                          return_full_exec_context=True)
    ties, total = cases.check_quantizers(proto, net, values)
    assert ties <= MAX_TIE_FRACTION * max(total, 1)
    _compare_all(proto, net, names, values, ours, ties, rtol=1e-5)


def _compare_all(proto, net, names, values, ours, ties, rtol):
    assert names
    pairs = [(out, out.split("__")[0]) for out in names]
    pre = cases.logits(proto, net)
    for value, blob in pairs + ([pre] if pre else []):
        got, want = values[value], ours[blob]
        if ties == 0:
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
        else:   # a tie flipped a level: the rest of the net sees another input
            assert (got.argmax(1) == want.argmax(1)).mean() >= 0.5


def _ort_run(path, names, x, extra=(), optimized=None, threads=1):
    ort = pytest.importorskip("onnxruntime", reason="the check needs onnxruntime")
    proto = onnx.load(path)
    have = {o.name for o in proto.graph.output}
    for value in extra:
        if value not in have:
            proto.graph.output.append(onnx.helper.make_tensor_value_info(
                value, onnx.TensorProto.FLOAT, None))
            have.add(value)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if optimized:
        options.optimized_model_filepath = optimized
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    wanted = list(names) + [v for v in extra if v not in names]
    return dict(zip(wanted, session.run(wanted, {"data": x})))


@pytest.mark.parametrize("quant", ["qdq", "integer"])
@pytest.mark.parametrize("name", _params(sorted(cases.MODELS)))
def test_qdq_export_runs_in_onnxruntime(tmp_path, name, quant):
    path, names, net, ours, x = _export(tmp_path, name, quant)
    proto = onnx.load(path)
    ops = {n.op_type for n in proto.graph.node}
    assert "DequantizeLinear" in ops
    nodes = cases.quantizer_nodes(proto, net)
    assert ("QuantizeLinear" in ops) == bool(nodes)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 13
    extra = [v for _, x_name, y_name in nodes for v in (x_name, y_name)]
    pre = cases.logits(proto, net)
    extra += [pre[0]] if pre else []
    optimized = str(tmp_path / "optimized.onnx")
    values = _ort_run(path, names, x, extra, optimized=optimized)
    ties, total = cases.check_quantizers(proto, net, values)
    assert ties <= MAX_TIE_FRACTION * max(total, 1)
    _compare_all(proto, net, names, values, ours, ties, rtol=1e-4)
    if quant == "integer" and nodes:
        fused = {n.op_type for n in onnx.load(optimized).graph.node}
        assert fused & INTEGER_OPS, sorted(fused)


def test_non_uniform_hwgq_levels_are_an_error_naming_the_layer(tmp_path):
    text = ('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 '
            'dim: 8 } } }\nlayer { name: "q2n" type: "Quant" bottom: "data" top: "q" '
            'quant_param { forward_func: "hwgq" centers: 0.453 centers: 1.51 } }\n')
    model = tmp_path / "n.prototxt"
    model.write_text(text)
    from pycaffe_lowbit.core.net import Net, TEST
    Net(str(model), TEST).save(str(tmp_path / "n.caffemodel"))
    for quant in ("qonnx", "qdq"):
        with pytest.raises(ExportError, match="layer 'q2n'.*not uniform"):
            onnx_export.export_onnx(str(model), str(tmp_path / "n.caffemodel"),
                                    str(tmp_path / "n.onnx"), quant=quant)


def test_po2_4b_weight_search_is_an_error_naming_the_layer(tmp_path):
    model = tmp_path / "ws.prototxt"
    model.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }\n'
        'layer { name: "ws1" type: "WeightSearchInnerProduct" bottom: "data" top: "y" '
        'inner_product_param { num_output: 3 } weight_search_param { value_set: "po2-4b" } }\n')
    from pycaffe_lowbit.core.net import Net, TEST
    Net(str(model), TEST).save(str(tmp_path / "ws.caffemodel"))
    with pytest.raises(ExportError, match="layer 'ws1'.*power-of-two grid of at most 8 bits"):
        onnx_export.export_onnx(str(model), str(tmp_path / "ws.caffemodel"),
                                str(tmp_path / "ws.onnx"), quant="qonnx")


def test_unknown_quant_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="quant must be one of qonnx, qdq, integer"):
        onnx_export.export_onnx("m", "w", str(tmp_path / "x.onnx"), quant="int4")


def test_convert_command_writes_each_format(tmp_path):
    from pycaffe_lowbit import cli
    model, weights, _ = cases.make_model(tmp_path, "digits_bnn")
    for quant, op in (("qonnx", "BipolarQuant"), ("qdq", "DequantizeLinear"),
                      ("integer", "ConvInteger")):
        out = str(tmp_path / ("d_%s.onnx" % quant))
        assert cli.main(["convert", weights, out, "--model", model, "--quant", quant]) == 0
        assert op in {n.op_type for n in onnx.load(out).graph.node}
    out = str(tmp_path / "d.onnx")
    assert cli.main(["convert", weights, out, "--model", model]) == 0
    assert not {"BipolarQuant", "DequantizeLinear"} & {n.op_type for n in onnx.load(out).graph.node}


def test_convert_command_names_the_layer_it_cannot_state(tmp_path, capfd):
    from pycaffe_lowbit import cli
    from pycaffe_lowbit.core.net import Net, TEST
    model = tmp_path / "n.prototxt"
    model.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { '
                     'dim: 1 dim: 8 } } }\nlayer { name: "q2n" type: "Quant" bottom: "data" '
                     'top: "q" quant_param { centers: 0.453 centers: 1.51 } }\n')
    Net(str(model), TEST).save(str(tmp_path / "n.caffemodel"))
    code = cli.main(["convert", str(tmp_path / "n.caffemodel"), str(tmp_path / "n.onnx"),
                     "--model", str(model), "--quant", "qdq"])
    assert code == 1
    err = capfd.readouterr().err
    assert "layer 'q2n'" in err and "levels 0, 0.453, 1.51 are not uniform" in err
