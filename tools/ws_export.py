#!/usr/bin/env python3
"""Export a weight-searched net as a plain Convolution / InnerProduct net.

    python tools/ws_export.py SEARCHED.prototxt SEARCHED.caffemodel PLAIN.prototxt PLAIN.caffemodel
    python tools/ws_export.py --check SEARCHED.prototxt PLAIN.caffemodel

Export writes W = v[argmax logits] per searched layer (see
pycaffe_lowbit.deploy.ws_export), then checks that every weight lies in its
layer's value set; --check only checks. Exits 1 when a weight is outside.
"""
import argparse
import sys

from pycaffe_lowbit.formats import caffemodel, text
from pycaffe_lowbit.deploy.ws_export import ExportError, check_in_set, export_searched


def _report(model, weights):
    bad = 0
    for name, count, outside, values in check_in_set(model, weights):
        print("layer %s: %d weights, %s in {%s}" % (
            name, count, "all" if not outside else "%d NOT" % outside,
            ", ".join("%g" % v for v in values)))
        bad += outside
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check PLAIN weights")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args(argv)
    try:
        if args.check:
            if len(args.files) != 2:
                ap.error("--check takes SEARCHED.prototxt PLAIN.caffemodel")
            model = text.read_net_param(args.files[0])
            return _report(model, caffemodel.read_net_binary(args.files[1]))
        if len(args.files) != 4:
            ap.error("export takes SEARCHED.prototxt SEARCHED.caffemodel PLAIN.prototxt "
                     "PLAIN.caffemodel")
        model = text.read_net_param(args.files[0])
        plain, weights = export_searched(model, caffemodel.read_net_binary(args.files[1]))
        text.write_text(plain, args.files[2])
        caffemodel.write_net_binary(weights, args.files[3])
        print("wrote %s and %s" % (args.files[2], args.files[3]))
        return _report(model, weights)
    except (ExportError, ValueError, OSError) as exc:
        print("ws_export: error: %s" % exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
