"""Export a Caffe net with its weights to ONNX (needs the ``onnx`` package:
``pip install 'pycaffe_lowbit[onnx]'``).

``export_onnx(model, weights, out)`` writes the float graph of ``onnx_graph``:
the net in deploy form, Binary*/Ternary* layers through ``bw`` (their
quantized weights as float constants), Quant as comparisons. With
``quant="qonnx" | "qdq" | "integer"`` every quantizer is written as a
quantizer node instead (``onnx_quant``).
"""
from ..formats import text
from ..core.net import Net, TEST
from .onnx_graph import net_to_onnx  # noqa: F401  (the writer, also for callers)


QUANT_FORMATS = ("qonnx", "qdq", "integer")


def export_onnx(model, weights, out, opset=17, input_shape=None, quant=None):
    """Write ``out`` (.onnx) for prototxt ``model`` with ``weights``; returns
    the ONNX names of the outputs. ``input_shape`` replaces data layers (see
    ``pipeline.deploy_form``). ``quant``: None (the float graph above), or one
    of ``QUANT_FORMATS``, where every quantizer is written as one (see
    ``onnx_quant``)."""
    from ..formats.caffemodel import atomic_write_bytes
    from . import bw
    from .pipeline import deploy_form
    if quant is not None and quant not in QUANT_FORMATS:
        raise ValueError("quant must be one of %s (got %r)" % (", ".join(QUANT_FORMATS), quant))
    param = deploy_form(text.read_net_param(model), input_shape, source=model)
    net = Net(param, TEST, weights=weights)
    if quant is not None:
        from .onnx_quant import quantized_onnx
        proto = quantized_onnx(net, quant, opset=opset)
    else:
        bw_param, _ = bw.to_bw(net)
        proto = net_to_onnx(Net(bw_param, TEST), opset=opset)
    atomic_write_bytes(out, proto.SerializeToString())
    return [o.name for o in proto.graph.output]
