#!/usr/bin/env python3
"""Write a QNN net and solver from the seed's train_quantized.py flags.

    python tools/qnn_model.py -ds CIFAR-10 -nb 4 -q 1 -ne 100 -nla 1 -nfa 64 \
        -nlb 1 -nfb 64 -nlc 1 -nfc 64 -ft 0 -nl relu -sym 0 -lr 0.001 -o models/my_qnn

See pycaffe_lowbit/model_zoo/qnn.py for the network and solver it writes.
"""
import os
import sys

from pycaffe_lowbit.model_zoo import qnn


def main(argv=None):
    args = qnn.parse_args(sys.argv[1:] if argv is None else argv)
    folder = args.out or os.path.join("models", qnn.default_name(args))
    for path, text in qnn.files(args, folder).items():
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("wrote " + path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
