"""``lowbit-caffe summary NET.prototxt``: what a net costs, layer by layer.

    lowbit-caffe summary NET.prototxt [--weights W] [--phase TRAIN|TEST]
                         [--input_shape N,C,H,W] [--level N] [--stage a,b]
                         [--set FIELD=VALUE ...]

Prints per layer its type, top shapes, parameters, the bits of its weights and
of its input activations, its multiply-accumulates per item with their
precision, and its memory as trained and as deployed; then the totals and the
compression against float32 (``pycaffe_lowbit.deploy.summary``). With
``--weights``, a plain Convolution / InnerProduct holding pre-binarized
weights (alpha * sign) counts as 1 bit (2 for ternary). ``--input_shape``
summarizes a train_val without its database: data layers become one Input,
losses go (the deploy form, TEST phase); otherwise its data layers are built
and need their sources (``--set`` points them elsewhere).
"""
from .common import Command, flag, load_model


def _summary_flags(p):
    p.add_argument("net", metavar="NET.prototxt", help="the net definition")
    flag(p, "weights", default="", help="trained weights (.caffemodel or .h5), "
                                        "comma-separated to merge several")
    flag(p, "phase", default="TEST", choices=["TRAIN", "TEST"],
         help="network phase (default TEST)")
    flag(p, "level", type=int, default=0, help="network level")
    flag(p, "stage", default="", help="network stages, comma-separated")
    flag(p, "input_shape", default="",
         help="N,C,H,W replacing the data layers (the deploy form, TEST phase)")
    flag(p, "set", action="append", default=[], metavar="FIELD=VALUE",
         help="override a layer field without editing the file (repeatable)")


def cmd_summary(args, log):
    from ..deploy.summary import summarize_file
    from ..proto import caffe_pb2
    shape = [int(v) for v in args.input_shape.split(",") if v] or None
    if shape and args.phase == "TRAIN":
        raise ValueError("--input_shape summarizes the deploy form, which is the TEST "
                         "phase; drop --phase TRAIN")
    stages = [s for s in args.stage.split(",") if s]
    args.model = args.net
    try:
        summary = summarize_file(load_model(args), args.weights or None,
                                 getattr(caffe_pb2, args.phase), shape, args.level, stages)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        if not shape:
            log.error("(a net whose data cannot be read: summarize it without its data "
                      "layers with --input_shape N,C,H,W)")
        return 1
    print(summary.to_text())
    return 0


COMMANDS = {"summary": Command(cmd_summary, "per-layer bits, parameters, MACs and memory "
                                            "of a net, and its compression", _summary_flags)}
