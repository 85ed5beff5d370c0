"""pycaffe's ``caffe.Detector``: classify windows of images (R-CNN style).

``Detector(model_file, pretrained_file, mean=None, input_scale=None,
raw_scale=None, channel_swap=None, context_pad=None)`` is a TEST-phase Net
with the Classifier's Transformer. ``detect_windows([(filename, windows)])``
loads each image, cuts each window (ymin, xmin, ymax, xmax), warps it to the
net's input size, runs them as one batch, and returns a list of
``{"window", "prediction", "filename"}`` dicts in input order.

With ``context_pad`` p (pixels of context at the net's input scale), a window
is first grown about its centre by s = crop / (crop - 2 p) (the input width
``crop``; square inputs), so that after warping the original window fills the
centre and p pixels of its surroundings show on each side; where the grown
box leaves the image, the missing part is the mean (in raw image space, so
preprocessing turns it to 0). ``detect_selective_search(filenames)`` asks the
``selective_search_ijcv_with_python`` module (MATLAB-based; not a dependency)
for proposals, as pycaffe's.
"""
import os

import numpy as np

from .. import io as caffe_io
from ..proto import caffe_pb2
from .classifier import configure_transformer
from .pycaffe import Net


class Detector(Net):
    """Windowed detection over a list of crops or selective-search proposals."""

    def __init__(self, model_file, pretrained_file, mean=None, input_scale=None,
                 raw_scale=None, channel_swap=None, context_pad=None):
        super().__init__(model_file, pretrained_file, caffe_pb2.TEST)
        if not self.inputs:
            raise ValueError("Detector: %s declares no input blob to feed windows to"
                             % (model_file,))
        self.transformer = configure_transformer(self, mean, input_scale, raw_scale,
                                                 channel_swap)
        self.configure_crop(context_pad)

    def detect_windows(self, images_windows):
        """[{'window', 'prediction', 'filename'}] for each window of each image."""
        crops = []
        for filename, windows in images_windows:
            image = caffe_io.load_image(filename).astype(np.float32)
            crops += [self.crop(image, np.asarray(window)) for window in windows]
        name = self.inputs[0]
        net_in = np.zeros((len(crops),) + tuple(self.blobs[name].data.shape[1:]), np.float32)
        for i, crop in enumerate(crops):
            net_in[i] = self.transformer.preprocess(name, crop)
        predictions = self.forward_all(**{name: net_in})[self.outputs[0]]
        predictions = predictions.reshape(len(predictions), -1)
        out, i = [], 0
        for filename, windows in images_windows:
            for window in windows:
                out.append({"window": window, "prediction": predictions[i],
                            "filename": filename})
                i += 1
        return out

    def detect_selective_search(self, image_fnames):
        """detect_windows over selective search's proposals for each image."""
        try:
            import selective_search_ijcv_with_python as selective_search
        except ImportError as exc:
            raise ImportError("detect_selective_search needs the "
                              "selective_search_ijcv_with_python module (and MATLAB), "
                              "as pycaffe's does") from exc
        image_fnames = [os.path.abspath(f) for f in image_fnames]
        windows = selective_search.get_windows(image_fnames)
        return self.detect_windows(list(zip(image_fnames, windows)))

    def crop(self, image, window):
        """The window (ymin, xmin, ymax, xmax) of ``image`` (H x W x K), with
        ``context_pad`` pixels of context warped in around it (see the module)."""
        if not self.context_pad:
            return image[window[0]:window[2], window[1]:window[3]]
        size = self.blobs[self.inputs[0]].data.shape[-1]
        grow = size / (1.0 * size - 2 * self.context_pad)
        half_h = (window[2] - window[0] + 1) / 2.0
        half_w = (window[3] - window[1] + 1) / 2.0
        centre = np.array((window[0] + half_h, window[1] + half_w))
        box = np.round(np.tile(centre, 2) + grow * np.array((-half_h, -half_w, half_h, half_w)))
        scale_h = size / (box[2] - box[0] + 1)
        scale_w = size / (box[3] - box[1] + 1)
        pad_y = int(round(max(0, -box[0]) * scale_h))     # rows of the grown box above the image
        pad_x = int(round(max(0, -box[1]) * scale_w))
        height, width = image.shape[:2]
        box = np.clip(box, 0.0, [height, width, height, width]).astype(int)
        clip_h, clip_w = box[2] - box[0] + 1, box[3] - box[1] + 1
        if clip_h <= 0 or clip_w <= 0:
            raise ValueError("Detector.crop: window %s lies outside the %dx%d image"
                             % (list(window), height, width))
        crop_h = min(int(round(clip_h * scale_h)), size - pad_y)
        crop_w = min(int(round(clip_w * scale_w)), size - pad_x)
        context = caffe_io.resize_image(image[box[0]:box[2], box[1]:box[3]], (crop_h, crop_w))
        out = np.ones(tuple(self.crop_dims), np.float32) * self.crop_mean
        out[pad_y:pad_y + crop_h, pad_x:pad_x + crop_w] = context
        return out

    def configure_crop(self, context_pad):
        """Crop size (H, W, K) of the input, and the mean in raw image space
        (the value context outside the image takes)."""
        name = self.inputs[0]
        order = self.transformer.transpose[name]
        inverse = [order.index(axis) for axis in range(len(order))]
        self.crop_dims = np.array(self.blobs[name].data.shape[1:])[inverse]
        self.context_pad = context_pad
        if not context_pad:
            return
        mean = self.transformer.mean.get(name)
        if mean is None:
            self.crop_mean = np.zeros(tuple(self.crop_dims), np.float32)
            return
        crop_mean = np.array(mean, np.float32)
        if crop_mean.ndim == 2:                                   # H x W, one channel
            crop_mean = crop_mean[np.newaxis]
        crop_mean = crop_mean.transpose(inverse)          # (K, 1, 1) per channel: (1, 1, K)
        swap = self.transformer.channel_swap.get(name)
        if swap is not None:
            crop_mean = crop_mean[:, :, [list(swap).index(c) for c in range(crop_mean.shape[2])]]
        raw_scale = self.transformer.raw_scale.get(name)
        if raw_scale is not None:
            crop_mean = crop_mean / raw_scale
        self.crop_mean = np.ascontiguousarray(crop_mean, np.float32)
