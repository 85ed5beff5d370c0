"""A Scale layer with bias_term whose blobs a net shares (a solver's test net,
``share_with``) computes with the shared bias, not the one it was built with."""
import numpy as np
from google.protobuf import text_format

import pycaffe_lowbit as caffe
from pycaffe_lowbit.proto import caffe_pb2

NET = """
layer { name: 'data' type: 'Input' top: 'data' input_param { shape { dim: 2 dim: 3 } } }
layer { name: 'sc' type: 'Scale' bottom: 'data' top: 'out' scale_param { bias_term: true } }
"""


def test_shared_scale_bias_is_used():
    param = text_format.Parse(NET, caffe_pb2.NetParameter())
    train, test = caffe.Net(param, caffe.TRAIN), caffe.Net(param, caffe.TEST)
    test.forward(data=np.ones((2, 3), np.float32))     # set up and run before sharing
    test.share_with(train)
    train.params["sc"][0].data[...] = 2
    train.params["sc"][1].data[...] = [1, 2, 3]
    out = test.forward(data=np.ones((2, 3), np.float32))["out"]
    np.testing.assert_array_equal(out, [[3, 4, 5], [3, 4, 5]])
