"""Deploying low-bit models: ``bw`` (Binary*/Ternary* -> plain layers holding
the quantized weights), ``fold`` (BatchNorm folding), ``pack`` (bit-packed
model file), ``runtime`` (running it with popcounts), ``onnx_export``.

``write_deploy`` is what ``lowbit-caffe deploy`` runs.
"""


def write_deploy(model, weights, out_dir, name, fold=True, input_shape=None):
    from .pipeline import write_deploy as run
    return run(model, weights, out_dir, name, fold=fold, input_shape=input_shape)
