"""Deploying low-bit models: ``bw`` (Binary*/Ternary* -> plain layers holding
the quantized weights), ``fold`` (BatchNorm folding), ``pack`` (bit-packed
model file), ``runtime`` (running it with popcounts), ``onnx_export`` (the
float graph, or with ``quant`` the QONNX / QDQ graphs of ``onnx_quant``).

``write_deploy`` is what ``lowbit-caffe deploy`` runs; ``export_onnx`` what
``lowbit-caffe convert W.caffemodel OUT.onnx --model DEPLOY [--quant F]`` runs.
"""


def write_deploy(model, weights, out_dir, name, fold=True, input_shape=None):
    from .pipeline import write_deploy as run
    return run(model, weights, out_dir, name, fold=fold, input_shape=input_shape)


def export_onnx(model, weights, out, quant=None, opset=17, input_shape=None):
    """Write ``out`` (.onnx) for prototxt ``model`` with ``weights``: the float
    graph, or with ``quant`` = "qonnx" | "qdq" | "integer" every quantizer as a
    quantizer node (``onnx_quant``). Returns the ONNX names of the outputs."""
    from .onnx_export import export_onnx as run
    return run(model, weights, out, opset=opset, input_shape=input_shape, quant=quant)
