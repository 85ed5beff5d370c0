"""Shared test helpers: build a layer from prototxt text, numeric gradient checks.

``check_gradient`` follows Caffe's GradientChecker: the objective is
L = sum_i <top_i, R_i> with fixed random R_i (R = 1 for scalar loss tops), the
analytic gradient comes from ``backward`` with top diffs R_i, the numeric one
from central differences of L, and points within ``kink_range`` of ``kink`` in
the perturbed input are skipped. Everything runs in float64.
"""
import numpy as np
from google.protobuf import text_format

from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.layers import create_layer
from pycaffe_lowbit.proto import caffe_pb2


def layer_param(text):
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def make_blobs(arrays, xp=np, dtype=np.float64):
    blobs = []
    for a in arrays:
        b = Blob(np.shape(a), dtype=dtype, xp=xp)
        b.data[...] = xp.asarray(a, dtype=dtype)
        blobs.append(b)
    return blobs


def build_layer(text, bottoms, n_top=1, xp=np, dtype=np.float64, phase=None):
    """A set-up layer with float64 blobs. ``bottoms``: NumPy arrays."""
    param = layer_param(text)
    if phase is not None:
        param.phase = phase
    backend.set_default_dtype(dtype)
    layer = create_layer(param, dtype=dtype)
    bottom = make_blobs(bottoms, xp, dtype)
    top = [Blob((), dtype=dtype, xp=xp) for _ in range(n_top)]
    layer.setup(bottom, top)
    return layer, bottom, top


def run_forward(layer, bottom, top):
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return [backend.to_numpy(t.data).copy() for t in top]


def _objective(layer, bottom, top, weights):
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    return sum(float((backend.to_numpy(t.data) * w).sum()) for t, w in zip(top, weights))


def check_gradient(layer, bottom, top, check_bottom=None, check_params=True,
                   stepsize=1e-4, threshold=1e-5, kink=None, kink_range=-1.0,
                   seed=0, top_weights=None):
    """Assert analytic == numeric gradients for bottoms (indices in
    ``check_bottom``, default all) and, if ``check_params``, the layer's blobs."""
    rng = np.random.default_rng(seed)
    layer.reshape(bottom, top)
    layer.forward(bottom, top)
    if top_weights is None:
        top_weights = [rng.standard_normal(t.shape) for t in top]
    if check_bottom is None:
        check_bottom = list(range(len(bottom)))
    propagate = [i in check_bottom for i in range(len(bottom))]
    xp = top[0].xp
    for b in bottom:        # first: a top may share its diff with a bottom (Flatten)
        b.diff[...] = 0
    for p in layer.blobs:
        p.diff[...] = 0
    for t, w in zip(top, top_weights):
        t.diff[...] = xp.asarray(w)
    layer.backward(top, propagate, bottom)
    targets = [("bottom %d" % i, bottom[i]) for i in check_bottom]
    if check_params:
        targets += [("param %d" % i, p) for i, p in enumerate(layer.blobs)]
    analytic = {name: backend.to_numpy(b.diff).copy() for name, b in targets}
    for name, blob in targets:
        data = blob.data
        flat = data.reshape(-1)
        for j in range(flat.size):
            x0 = float(flat[j])
            if kink is not None and abs(x0 - kink) < kink_range:
                continue
            flat[j] = x0 + stepsize
            plus = _objective(layer, bottom, top, top_weights)
            flat[j] = x0 - stepsize
            minus = _objective(layer, bottom, top, top_weights)
            flat[j] = x0
            numeric = (plus - minus) / (2 * stepsize)
            got = float(analytic[name].reshape(-1)[j])
            scale = max(abs(numeric), abs(got), 1.0)
            assert abs(got - numeric) <= threshold * scale, (
                "%s: %s[%d] analytic %.8g vs numeric %.8g"
                % (layer.type, name, j, got, numeric))


class captured_log:
    """Collect the ``pycaffe_lowbit`` logger's INFO+ messages (independent of
    propagation and of handlers the CLI may have installed)."""

    def __enter__(self):
        import logging
        self.logger = logging.getLogger("pycaffe_lowbit")
        self.lines = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(record.getMessage())
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)

    @property
    def text(self):
        return "\n".join(self.lines)


def run_in_place(text, x, dy, xp=np):
    """Set up the layer of ``text`` in place (its top is its bottom blob), run
    forward, then backward from top diff ``dy``. Returns (layer, blob): the blob's
    data is y and its diff is dx."""
    layer = create_layer(layer_param(text), dtype=np.float64)
    blob, = make_blobs([x], xp)
    layer.setup([blob], [blob])
    layer.reshape([blob], [blob])
    layer.forward([blob], [blob])
    y = backend.to_numpy(blob.data).copy()
    blob.diff[...] = xp.asarray(dy)
    layer.backward([blob], [True], [blob])
    return layer, y, blob


# A tiny trainable net (DummyData -> InnerProduct -> SoftmaxWithLoss) for the
# command-line tests; TINY_NET_WITH_ACCURACY adds a TEST-phase Accuracy top.
TINY_NET = """
name: "tiny"
layer { name: "data" type: "DummyData" top: "x" top: "label"
        dummy_data_param { shape { dim: 8 dim: 4 } shape { dim: 8 }
                           data_filler { type: "gaussian" std: 1 }
                           data_filler { type: "constant" value: 1 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
TINY_NET_WITH_ACCURACY = TINY_NET + """layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy"
        include { phase: TEST } }
"""

# A two-layer perceptron on an Input layer (4 x 6 data, 4 labels), for the net
# and snapshot tests.
MLP_NET = """
name: "mlp"
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 6 } shape { dim: 4 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "uniform" min: -0.1 max: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
