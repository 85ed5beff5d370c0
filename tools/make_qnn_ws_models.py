#!/usr/bin/env python3
"""(Re)write models/qnn_*/ and models/ws_*/ from pycaffe_lowbit.model_zoo.qnn and
.weightsearch (run from the repository root). tests/model_zoo/test_qnn_ws_models.py fails
when the committed files differ from what this writes."""
import os
import sys

from pycaffe_lowbit.model_zoo import qnn, weightsearch


def main():
    changed = 0
    for path, text in sorted({**qnn.render(), **weightsearch.render()}.items()):
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old != text:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            changed += 1
    print("%d files written" % changed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
