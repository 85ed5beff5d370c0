"""caffe.layer_type_list() covers upstream BVLC Caffe's registered layer types."""
import pycaffe_lowbit as caffe

# Every type BVLC Caffe 9b89154 registers (REGISTER_LAYER_CLASS / the creator
# functions), CPU build.
UPSTREAM = {
    "AbsVal", "Accuracy", "ArgMax", "BNLL", "BatchNorm", "BatchReindex", "Bias", "Clip",
    "Concat", "ContrastiveLoss", "Convolution", "Crop", "Data", "Deconvolution", "Dropout",
    "DummyData", "ELU", "Eltwise", "Embed", "EuclideanLoss", "Exp", "Filter", "Flatten",
    "HDF5Data", "HDF5Output", "HingeLoss", "Im2col", "ImageData", "InfogainLoss",
    "InnerProduct", "Input", "LRN", "LSTM", "LSTMUnit", "Log", "MVN", "MemoryData",
    "MultinomialLogisticLoss", "PReLU", "Parameter", "Pooling", "Power", "Python", "RNN",
    "ReLU", "Reduction", "Reshape", "SPP", "Scale", "Sigmoid", "SigmoidCrossEntropyLoss",
    "Silence", "Slice", "Softmax", "SoftmaxWithLoss", "Split", "Swish", "TanH",
    "Threshold", "Tile", "WindowData",
}


def test_every_upstream_layer_is_registered():
    missing = UPSTREAM - set(caffe.layer_type_list())
    assert not missing, "missing layer types: %s" % sorted(missing)


def test_list_is_sorted_and_unique():
    types = caffe.layer_type_list()
    assert types == sorted(set(types))
