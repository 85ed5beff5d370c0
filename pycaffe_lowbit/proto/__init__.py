"""The schema: ``caffe_pb2`` generated from proto/caffe.proto (see README, "Schema")."""
from . import caffe_pb2  # noqa: F401
