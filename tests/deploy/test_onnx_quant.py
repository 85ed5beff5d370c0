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


WEIGHT_LAYERS = [
    ('BinaryInnerProduct', 'binary_inner_product_param { use_alpha: true }'),
    ('BinaryInnerProduct', 'binary_inner_product_param { use_alpha: false }'),
    ('BinaryInnerProduct', ''),                                  # SQ's BWN
    ('TernaryInnerProduct', 'SQ50'),
    ('QNNInnerProduct', 'qnn_weight_param { nb: 0 }'),
    ('QNNInnerProduct', 'qnn_weight_param { nb: 2 }'),
    ('QNNInnerProduct', 'qnn_weight_param { nb: 4 symmetric: true }'),
    ('WeightSearchInnerProduct', 'weight_search_param { value_set: "1b" }'),
    ('WeightSearchInnerProduct', 'weight_search_param { value_set: "int-3b" }'),
    ('WeightSearchInnerProduct', 'weight_search_param { value_set: "po2-2b" }'),
]


@pytest.mark.parametrize("kind,extra", WEIGHT_LAYERS)
def test_weight_code_is_the_layers_test_weight(tmp_path, kind, extra):
    """ints * scale is the weight the layer's TEST forward uses, bit for bit
    (SQ at ratio 50 deploys fully quantized), and the integers lie in the
    declared range."""
    from pycaffe_lowbit.core.net import Net, TEST
    from pycaffe_lowbit.deploy.onnx_levels import weight_code
    model = tmp_path / "w.prototxt"
    sq = "sq: true ratio: 50 " if extra == "SQ50" else ""
    model.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 6 } } }\n'
        'layer { name: "ip" type: "%s" bottom: "data" top: "y" %s inner_product_param { %s'
        'num_output: 5 weight_filler { type: "gaussian" std: 0.3 } } }\n'
        % (kind, "" if sq else extra, sq))
    net = Net(str(model), TEST)
    layer = net.layers[1]
    if kind == "TernaryInnerProduct":
        layer.blobs[0].data[0] = 0.01          # a row with no element above the threshold
    code = weight_code(layer)
    if kind == "TernaryInnerProduct":
        want = layer.weight_quantizer.inner.forward(layer.blobs[0].data)
    elif kind.startswith("WeightSearch"):
        want = layer.search.forward(layer.blobs[0].data, layer.temperature(), hard=True,
                                    noise=False)[0]
    else:
        want = layer.weight_quantizer.forward(layer.blobs[0].data.copy())
    np.testing.assert_array_equal(code.value(), want)
    lo, hi = code.int_range()
    assert lo <= code.ints.min() and code.ints.max() <= hi
    assert np.all(code.ints == np.round(code.ints))


@pytest.mark.parametrize("quant", [
    'quant_param { forward_func: "hwgq" centers: 0.538 centers: 1.076 centers: 1.614 }',
    'quant_param { forward_func: "sign" }',
    'qnn_activation_param { nb: 2 nonlinearity: HARDTANH }',
    'qnn_activation_param { nb: 3 nonlinearity: RELU }',
    'qnn_activation_param { nb: 0 nonlinearity: HARDTANH }'])
@pytest.mark.parametrize("fmt", ["qonnx", "qdq"])
def test_activation_quantizers_agree_on_ties_and_levels(tmp_path, quant, fmt):
    """Each activation quantizer alone, on its thresholds, levels, 0, -0.0
    and a sweep: the runtime's output is ours everywhere except at exact ties
    (none for QONNX's HWGQ and QNN, whose rounding modes are the layers')."""
    from pycaffe_lowbit.core.net import Net, TEST
    kind = "Quant" if quant.startswith("quant") else "QNNActivation"
    x = np.concatenate([np.float32([0, -0.0, 0.538, 0.807, 1.076, 1.345, 1.614, 0.3, 0.55, 0.8,
                                    -0.2, 0.25, 0.5, 0.75, -0.25, -0.5, -0.75, 1, -1, 0.125]),
                        np.linspace(-2, 2, 236, dtype=np.float32)]).astype(np.float32)
    model = tmp_path / "a.prototxt"
    model.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 '
                     'dim: 256 } } }\nlayer { name: "q" type: "%s" bottom: "data" top: "q" %s }\n'
                     % (kind, quant))
    net = Net(str(model), TEST)
    net.save(str(tmp_path / "a.caffemodel"))
    out = str(tmp_path / "a.onnx")
    onnx_export.export_onnx(str(model), str(tmp_path / "a.caffemodel"), out, quant=fmt)
    proto = onnx.load(out)
    if fmt == "qonnx":
        pytest.importorskip("qonnx", reason="the check needs the qonnx package")
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes
        values = execute_onnx(ModelWrapper(out).transform(InferShapes()), {"data": x[None]},
                              return_full_exec_context=True)
    else:
        values = _ort_run(out, ["q"], x[None], extra=["data"])
    ties, total = cases.check_quantizers(proto, net, values)
    assert total == 256
    if fmt == "qonnx" and "sign" not in quant:
        assert ties == 0


def test_hwgq_negative_slope_has_no_integer_zero_point(tmp_path):
    """Levels -s', c_1, c_2 uniform with step s need s' = m s for an integer
    zero point m, and then c_1 = (1 - m) s <= 0: never, so it is an error."""
    model = tmp_path / "s.prototxt"
    model.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 '
                     'dim: 4 } } }\nlayer { name: "qs" type: "Quant" bottom: "data" top: "q" '
                     'quant_param { centers: 0.3 centers: 0.8 negative_slope: 0.2 } }\n')
    from pycaffe_lowbit.core.net import Net, TEST
    Net(str(model), TEST).save(str(tmp_path / "s.caffemodel"))
    with pytest.raises(ExportError, match="layer 'qs'.*no integer zero point"):
        onnx_export.export_onnx(str(model), str(tmp_path / "s.caffemodel"),
                                str(tmp_path / "s.onnx"), quant="qonnx")
