"""Layer: the unit a Net is built from, with Caffe's life cycle.

``setup(bottom, top)`` checks the blob counts, calls ``layer_setup`` (read the
parameters, create and fill the learnable blobs), calls ``reshape`` and sets the
loss weights. ``forward(bottom, top)`` is preceded by ``reshape`` at every call,
as in Caffe, so a new input shape flows through the net. ``backward(top,
propagate_down, bottom)`` writes bottom diffs (overwriting) and accumulates
parameter diffs (adding), as Caffe does.

Subclasses set the blob-count constraints as class attributes and implement
``reshape``, ``forward`` and, where there is a gradient, ``backward``.
"""
import numpy as np

from ..core.blob import Blob
from ..core import backend


def shape_str(shape):
    """Caffe's shape string: "2 3 4 (24)"."""
    return "%s (%d)" % (" ".join(str(d) for d in shape), int(np.prod(shape, dtype=np.int64)))


def _legacy4(shape):
    return (1,) * (4 - len(shape)) + tuple(shape) if len(shape) <= 4 else tuple(shape)


class LayerSetupError(ValueError):
    """A layer's parameters or bottoms do not fit; the message names the layer."""


class Layer:
    type = None  # the Caffe type string, set by @register

    # Blob-count constraints (-1: no constraint), as Caffe's ExactNumBottomBlobs...
    exact_num_bottom = -1
    min_num_bottom = -1
    max_num_bottom = -1
    exact_num_top = -1
    min_num_top = -1
    max_num_top = -1
    equal_num_bottom_top = False
    auto_top_blobs = False  # create the minimum number of tops if none given
    is_loss = False  # LossLayer: loss_weight defaults to 1 on top 0

    def __init__(self, param, phase=None, dtype=None):
        """``param`` is a LayerParameter; ``phase`` overrides ``param.phase``."""
        self.param = param
        self.phase = param.phase if phase is None else phase
        self.name = param.name
        self.dtype = np.dtype(dtype or backend.default_dtype())
        self.blobs = []
        self.param_propagate_down = []
        self.loss_weights = []
        # Blobs stored in the LayerParameter (a net built from a caffemodel).
        if len(param.blobs):
            from ..formats.blobproto import blob_from_proto
            self.blobs = [blob_from_proto(bp, dtype=self.dtype) for bp in param.blobs]

    # -- the Caffe life cycle --------------------------------------------------
    def setup(self, bottom, top):
        self.check_blob_counts(bottom, top)
        self.layer_setup(bottom, top)
        self.reshape(bottom, top)
        self.set_loss_weights(top)
        while len(self.param_propagate_down) < len(self.blobs):
            self.param_propagate_down.append(True)

    def layer_setup(self, bottom, top):
        """Read parameters and create learnable blobs (once)."""

    def reshape(self, bottom, top):
        raise NotImplementedError

    def forward(self, bottom, top):
        raise NotImplementedError

    def backward(self, top, propagate_down, bottom):
        """Default: no gradient. Layers with one override this."""
        if any(propagate_down):
            raise NotImplementedError(
                "layer '%s' (%s) has no backward" % (self.name, self.type))

    def allow_force_backward(self, bottom_index):
        return True

    # -- helpers -------------------------------------------------------------
    def error(self, message, cls=None):
        """A ``LayerSetupError`` (or subclass ``cls``) naming this layer."""
        return (cls or LayerSetupError)("layer '%s' (type %s): %s"
                                        % (self.name, self.type, message))

    def new_blob(self, shape):
        """A parameter blob of this layer's dtype."""
        return Blob(shape, dtype=self.dtype)

    def init_params(self, shapes, fillers, names=("weight", "bias")):
        """Create ``self.blobs`` of ``shapes`` filled by ``fillers`` (one
        FillerParameter each), or, when blobs were preloaded from a caffemodel,
        check that they have those shapes."""
        if self.blobs:
            self.check_param_shapes(shapes, names)
            return
        from ..core.blob import BlobTooLargeError
        from ..core.fillers import fill
        blobs = []
        for k, shape in enumerate(shapes):
            try:
                blobs.append(self.new_blob(shape))
            except BlobTooLargeError as exc:
                exc.what = "param %d (%s)" % (k, names[k] if k < len(names) else "blob")
                raise
        self.blobs = blobs
        for blob, filler in zip(self.blobs, fillers):
            fill(blob, filler)

    def check_param_shapes(self, shapes, names=("weight", "bias")):
        """Preloaded blobs must have ``shapes``. Legacy 4-D shapes (1 x 1 x N x K)
        of the same values are accepted and reshaped, as Caffe's ShapeEquals
        accepts them."""
        if len(self.blobs) != len(shapes):
            raise self.error("Incorrect number of weight blobs: expected %d, got %d"
                             % (len(shapes), len(self.blobs)))
        for blob, shape, name in zip(self.blobs, shapes, names):
            shape = tuple(shape)
            if blob.shape == shape:
                continue
            if _legacy4(blob.shape) == _legacy4(shape):
                blob.reshape(shape)
                continue
            raise self.error("Incorrect %s shape: expected shape %s; instead, shape was %s"
                             % (name, shape_str(shape), shape_str(blob.shape)))

    def check_blob_counts(self, bottom, top):
        nb, nt = len(bottom), len(top)

        def need(ok, what):
            if not ok:
                raise self.error(what)
        if self.exact_num_bottom >= 0:
            need(nb == self.exact_num_bottom,
                 "takes %d bottom blob(s), got %d" % (self.exact_num_bottom, nb))
        if self.min_num_bottom >= 0:
            need(nb >= self.min_num_bottom,
                 "takes at least %d bottom blob(s), got %d" % (self.min_num_bottom, nb))
        if self.max_num_bottom >= 0:
            need(nb <= self.max_num_bottom,
                 "takes at most %d bottom blob(s), got %d" % (self.max_num_bottom, nb))
        if self.exact_num_top >= 0:
            need(nt == self.exact_num_top,
                 "produces %d top blob(s), got %d" % (self.exact_num_top, nt))
        if self.min_num_top >= 0:
            need(nt >= self.min_num_top,
                 "produces at least %d top blob(s), got %d" % (self.min_num_top, nt))
        if self.max_num_top >= 0:
            need(nt <= self.max_num_top,
                 "produces at most %d top blob(s), got %d" % (self.max_num_top, nt))
        if self.equal_num_bottom_top:
            need(nb == nt, "needs as many tops as bottoms (%d vs %d)" % (nt, nb))

    def set_loss_weights(self, top):
        """Caffe's SetLossWeights: one loss_weight per top, or none (then loss
        layers weigh top 0 by 1). The weight is stored in the top's diff, which is
        what backward starts from."""
        weights = list(self.param.loss_weight)
        if weights and len(weights) != len(top):
            raise self.error("loss_weight must be unspecified or specified once per "
                             "top blob (%d given, %d tops)" % (len(weights), len(top)))
        if not weights:
            weights = [1.0 if (self.is_loss and i == 0) else 0.0 for i in range(len(top))]
        self.loss_weights = weights
        for blob, w in zip(top, weights):
            if w:
                blob.diff[...] = w

    def min_top_count(self):
        return max(self.exact_num_top, self.min_num_top, 0)
