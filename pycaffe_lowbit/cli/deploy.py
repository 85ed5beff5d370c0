"""``lowbit-caffe deploy | convert | upgrade_net_proto_text | upgrade_net_proto_binary``.

The work is done in ``pycaffe_lowbit.deploy`` and ``pycaffe_lowbit.convert``.
"""
import argparse
import os

from .common import Command, flag

_CONVERT_HELP = """convert weights between formats, chosen by the file extensions:
  IN.caffemodel -> OUT.npz          one array per blob, "<layer>/<i>" (round-trips byte for byte)
  IN.npz        -> OUT.caffemodel
  IN.caffemodel -> OUT.h5           Caffe's HDF5 layout (/data/<layer>/<i>)
  IN.h5         -> OUT.caffemodel   (--model: keep the layer definitions of a prototxt)
  IN.caffemodel -> OUT.onnx         needs --model (a deploy prototxt: Input layer or input_shape);
                                    Binary*/Ternary* layers are exported with their quantized
                                    weights as constants; with --quant the quantizers are
                                    written as quantizer nodes:
      --quant qonnx     QONNX (FINN): BipolarQuant / Quant on weights and activations
      --quant qdq       QuantizeLinear / DequantizeLinear pairs, int8 / uint8 (TensorRT, ...)
      --quant integer   the qdq graph with ConvInteger / MatMulInteger where a quantized
                        activation feeds a quantized layer (onnxruntime's integer kernels)
A V1 or HWGQ-fork caffemodel is read (and upgraded) as Caffe reads it."""


def _convert_flags(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = _CONVERT_HELP
    p.add_argument("input", help="input file (.caffemodel, .npz, .h5)")
    p.add_argument("output", help="output file (.npz, .caffemodel, .h5, .onnx)")
    flag(p, "model", default="", help="net prototxt: layer definitions for .h5 -> "
          ".caffemodel, the graph for .onnx")
    flag(p, "opset", type=int, default=17, help="ONNX opset (default 17)")
    flag(p, "input_shape", default="", help="N,C,H,W replacing the data layers of a "
          "train_val (.onnx)")
    flag(p, "quant", default="", choices=("", "qonnx", "qdq", "integer"),
         help="quantized ONNX: qonnx, qdq or integer (default: the float graph)")


def _kind(path):
    p = path.lower()
    for ext, kind in ((".caffemodel.h5", "h5"), (".h5", "h5"), (".hdf5", "h5"),
                      (".npz", "npz"), (".onnx", "onnx"), (".caffemodel", "caffemodel")):
        if p.endswith(ext):
            return kind
    return "caffemodel" if p.endswith(".binaryproto") else None


def cmd_convert(args, log):
    from ..convert import weights
    src, dst = _kind(args.input), _kind(args.output)
    pairs = {("caffemodel", "npz"): lambda: weights.caffemodel_to_npz(args.input, args.output),
             ("npz", "caffemodel"): lambda: weights.npz_to_caffemodel(args.input, args.output),
             ("caffemodel", "h5"): lambda: weights.caffemodel_to_hdf5(args.input, args.output),
             ("h5", "caffemodel"): lambda: weights.hdf5_to_caffemodel(
                 args.input, args.output, args.model or None),
             ("caffemodel", "onnx"): lambda: _to_onnx(args, log)}
    run = pairs.get((src, dst))
    if run is None:
        log.error("convert: cannot convert %s to %s (supported: %s)", args.input, args.output,
                  ", ".join("%s -> %s" % p for p in pairs))
        return 1
    if run() is False:
        return 1
    log.info("Wrote %s", args.output)
    return 0


def _to_onnx(args, log):
    from ..deploy import onnx_export
    if not args.model:
        log.error("convert: .onnx needs --model (the net prototxt)")
        return False
    shape = [int(v) for v in args.input_shape.split(",") if v] or None
    try:
        onnx_export.export_onnx(args.model, args.input, args.output, opset=args.opset,
                                input_shape=shape, quant=args.quant or None)
    except ValueError as exc:   # onnx_levels.ExportError names the layer
        log.error("convert: %s", exc)
        return False
    return True


def _deploy_flags(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "write the deploy forms of a trained low-bit model into --out:\n"
        "  <name>_bw.prototxt / <name>_bw.caffemodel  every Binary*/Ternary* layer as a plain\n"
        "      Convolution / InnerProduct holding its quantized weights (alpha*sign(W), alpha*t);\n"
        "      Quant and BatchNorm kept: official Caffe runs this pair\n"
        "  <name>_folded.prototxt / .caffemodel  the same with BatchNorm (+Scale) folded into\n"
        "      the preceding plain layer where exact\n"
        "  <name>.lbpack  the packed model (1 bit per binary weight, 2 per ternary, per-filter\n"
        "      scales), run by pycaffe_lowbit.deploy.runtime; the size report is logged")
    flag(p, "model", required=True, help="train_val or deploy prototxt")
    flag(p, "weights", required=True, help="trained .caffemodel (or .h5)")
    flag(p, "out", required=True, help="output folder (created)")
    flag(p, "name", default="", help="stem of the output files (default: the model's)")
    flag(p, "no_fold", action="store_true", help="do not write the folded pair")
    flag(p, "input_shape", default="", help="N,C,H,W of the input, for a train_val whose "
          "data layers read a database")


def cmd_deploy(args, log):
    from ..deploy import write_deploy
    name = args.name or os.path.splitext(os.path.basename(args.model))[0]
    os.makedirs(args.out, exist_ok=True)
    shape = [int(v) for v in args.input_shape.split(",") if v] or None
    write_deploy(args.model, args.weights, args.out, name, fold=not args.no_fold,
                 input_shape=shape)
    return 0


def _upgrade_flags(p):
    p.add_argument("input", help="the legacy net")
    p.add_argument("output", help="where to write the upgraded net")


def cmd_upgrade_text(args, log):
    from ..convert.upgrade import upgrade_net_proto_text
    return 0 if upgrade_net_proto_text(args.input, args.output) else 1


def cmd_upgrade_binary(args, log):
    from ..convert.upgrade import upgrade_net_proto_binary
    return 0 if upgrade_net_proto_binary(args.input, args.output) else 1


COMMANDS = {
    "deploy": Command(cmd_deploy, "write the deploy pair, the folded pair and the packed model",
                      _deploy_flags),
    "convert": Command(cmd_convert, "convert weights: caffemodel <-> npz / h5, caffemodel -> "
                       "onnx", _convert_flags),
    "upgrade_net_proto_text": Command(cmd_upgrade_text, "upgrade a legacy (V0/V1) net "
                                      "prototxt, as Caffe's tool", _upgrade_flags),
    "upgrade_net_proto_binary": Command(cmd_upgrade_binary, "upgrade a legacy (V0/V1) binary "
                                        "net (.caffemodel)", _upgrade_flags),
}
