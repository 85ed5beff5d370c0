"""Conversions between weight files and formats: ``weights`` (.caffemodel <->
.npz, .caffemodel <-> HDF5) and ``upgrade`` (Caffe's upgrade_net_proto_text /
upgrade_net_proto_binary). ONNX export lives in ``pycaffe_lowbit.deploy.onnx_export``."""
