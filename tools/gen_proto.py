#!/usr/bin/env python3
"""Regenerate pycaffe_lowbit/proto/caffe_pb2.py from proto/caffe.proto.

The module is generated with protoc 4.25 (grpcio-tools 1.62.x), whose output
has no runtime-version gate, so one checked-in file runs on every protobuf
runtime from 4.21.6 to today's 7.x. This script makes a throwaway virtual
environment with that protoc, so the result does not depend on what is
installed here:

    python tools/gen_proto.py

tests/proto/test_schema.py fails when the checked-in module is stale.
"""
import os
import subprocess
import sys
import tempfile
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTOC_PACKAGE = "grpcio-tools==1.62.3"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        venv.create(tmp, with_pip=True)
        python = os.path.join(tmp, "bin", "python")
        subprocess.check_call([python, "-m", "pip", "install", "-q", PROTOC_PACKAGE])
        subprocess.check_call([
            python, "-m", "grpc_tools.protoc", "-I", os.path.join(ROOT, "proto"),
            "--python_out", os.path.join(ROOT, "pycaffe_lowbit", "proto"),
            os.path.join(ROOT, "proto", "caffe.proto")])
    print("wrote pycaffe_lowbit/proto/caffe_pb2.py")


if __name__ == "__main__":
    sys.exit(main())
