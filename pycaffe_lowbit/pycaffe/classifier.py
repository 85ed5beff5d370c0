"""pycaffe's ``caffe.Classifier``: a TEST-phase Net that classifies H x W x K
images (floats in [0, 1], as ``caffe.io.load_image`` gives them).

``Classifier(model_file, pretrained_file, image_dims=None, mean=None,
input_scale=None, raw_scale=None, channel_swap=None)`` sets up a
``caffe.io.Transformer`` for the first input (HWC -> CHW, then the given
mean, scales and channel order, as pycaffe's).

``predict(inputs, oversample=True)``: each image is resized to
``image_dims`` (default: the input blob's spatial size); with ``oversample``
the 10 crops of ``caffe.io.oversample`` (4 corners and the centre, and their
mirrors) of the input's crop size go through the net and their output
(N*10, C) is averaged to (N, C); without it, the centre crop alone, starting
at ``int(image_dims / 2 - crop_dims / 2)``. Returns the first output's
values, (N, C).
"""
import numpy as np

from .. import io as caffe_io
from ..proto import caffe_pb2
from .pycaffe import Net


def configure_transformer(net, mean=None, input_scale=None, raw_scale=None,
                          channel_swap=None):
    """A Transformer for ``net``'s first input with pycaffe's preprocessing steps."""
    name = net.inputs[0]
    transformer = caffe_io.Transformer({name: net.blobs[name].data.shape})
    transformer.set_transpose(name, (2, 0, 1))
    if mean is not None:
        transformer.set_mean(name, mean)
    if input_scale is not None:
        transformer.set_input_scale(name, input_scale)
    if raw_scale is not None:
        transformer.set_raw_scale(name, raw_scale)
    if channel_swap is not None:
        transformer.set_channel_swap(name, channel_swap)
    return transformer


class Classifier(Net):
    """Image classification by scaling, centre cropping or oversampling."""

    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None):
        super().__init__(model_file, pretrained_file, caffe_pb2.TEST)
        if not self.inputs:
            raise ValueError("Classifier: %s declares no input blob (an Input layer or "
                             "input: field) to feed images to" % (model_file,))
        self.transformer = configure_transformer(self, mean, input_scale, raw_scale,
                                                 channel_swap)
        self.crop_dims = np.array(self.blobs[self.inputs[0]].data.shape[2:])
        self.image_dims = self.crop_dims if image_dims is None or not len(image_dims) \
            else image_dims

    def predict(self, inputs, oversample=True):
        """(N, C) class scores of the N images ``inputs`` (each H x W x K)."""
        if not len(inputs):
            raise ValueError("Classifier.predict: no input images")
        dims = tuple(int(d) for d in self.image_dims)
        batch = np.zeros((len(inputs),) + dims + (inputs[0].shape[2],), np.float32)
        for i, image in enumerate(inputs):
            batch[i] = caffe_io.resize_image(image, dims)
        if oversample:
            batch = caffe_io.oversample(batch, self.crop_dims)
        else:
            start = (np.array(dims) / 2.0 - self.crop_dims / 2.0).astype(int)
            stop = start + self.crop_dims.astype(int)
            batch = batch[:, start[0]:stop[0], start[1]:stop[1], :]
        name = self.inputs[0]
        net_in = np.zeros((batch.shape[0], batch.shape[3]) + batch.shape[1:3], np.float32)
        for i, image in enumerate(batch):
            net_in[i] = self.transformer.preprocess(name, image)
        predictions = self.forward_all(**{name: net_in})[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1)).mean(axis=1)
        return predictions
