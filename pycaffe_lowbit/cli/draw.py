"""``lowbit-caffe draw NET.prototxt OUT.png``: python/draw_net.py as a command."""
from .common import Command, flag


def _draw_flags(p):
    """python/draw_net.py's arguments."""
    p.add_argument("input_net_proto_file", help="input network prototxt file")
    p.add_argument("output_image_file",
                   help="output image file; its extension picks the format "
                        "(png, svg, pdf..., raw for the DOT source)")
    flag(p, "rankdir", default="LR",
         help="one of TB (top-bottom), BT (bottom-top), LR (left-right), "
              "RL (right-left); default LR")
    flag(p, "phase", default="ALL", choices=["TRAIN", "TEST", "ALL"],
         help="which network phase to draw (default ALL: every layer)")
    flag(p, "display_lrm", action="store_true",
         help="show the learning rate multipliers of learning layers")


def cmd_draw(args, log):
    from ..pycaffe import draw
    from ..formats.text import read_net_param
    from ..proto import caffe_pb2
    net = read_net_param(args.input_net_proto_file)
    phase = {"TRAIN": caffe_pb2.TRAIN, "TEST": caffe_pb2.TEST}.get(args.phase)
    log.info("Drawing net to %s", args.output_image_file)
    try:
        draw.draw_net_to_file(net, args.output_image_file, args.rankdir, phase,
                              args.display_lrm)
    except (ImportError, RuntimeError) as exc:
        log.error("%s", exc)
        return 1
    return 0


COMMANDS = {"draw": Command(cmd_draw, "draw a net definition as a graph image (needs pydot and "
                                      "Graphviz)", _draw_flags)}
