#!/usr/bin/env python3
"""Write models/ from pycaffe_lowbit.model_zoo (NetSpec definitions of the seeds' nets).

    python tools/make_models.py              # (re)write the generated folders of models/
    python tools/make_models.py --out DIR    # write them under DIR instead
    python tools/make_models.py --check      # change nothing; exit 1 listing what differs

Output is deterministic; tests/model_zoo/test_model_zoo.py fails when the committed
models/ are not what this writes, so change the generator, never the files.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from pycaffe_lowbit import model_zoo  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "models"),
                        help="directory to write (default: the repository's models/)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the files that differ and exit 1 if any")
    args = parser.parse_args(argv)
    texts = model_zoo.render()
    if args.check:
        problems = model_zoo.differences(args.out, texts)
        for line in problems:
            print(line)
        return 1 if problems else 0
    changed = model_zoo.write(args.out, texts)
    print("%d files in %d folders under %s; %d written"
          % (len(texts), len({rel.split("/")[0] for rel in texts}), args.out, len(changed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
