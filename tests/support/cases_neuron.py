"""Hypothesis strategies for the elementwise and normalisation layers: random
but schema-valid parameters and small bottoms (see ``properties``)."""
import numpy as np
from hypothesis import strategies as st

from pycaffe_lowbit.proto import caffe_pb2

from .properties import Case, distinct

TEST = caffe_pb2.TEST


def rng_of(draw):
    return np.random.default_rng(draw(st.integers(0, 2 ** 16)))


def rarely(draw, n=9):
    """True about once in n + 1 draws (Hypothesis favours small integers, so
    the rare branch is the largest one)."""
    return draw(st.integers(0, n)) == n


def shape(draw, min_axes=1, max_axes=4, max_dim=3, min_dim=1):
    n = draw(st.integers(min_axes, max_axes))
    return tuple(draw(st.lists(st.integers(min_dim, max_dim), min_size=n, max_size=n)))


def grid(draw, scale, low, high):
    """A multiple of ``scale`` in [low, high] (kinks on the grid stay 0.15 away
    from ``distinct`` values when scale is 0.3)."""
    return scale * draw(st.integers(low, high))


def elementwise(text="", scale=1.0, min_axes=1, grad=True):
    @st.composite
    def build(draw):
        rng = rng_of(draw)
        x, = distinct(rng, shape(draw, min_axes=min_axes), scale=scale)
        body = text(draw) if callable(text) else text
        return Case(body, [x], backward=grad, numeric=grad)
    return build()


def _relu(draw):
    slope = draw(st.sampled_from([0.0, 0.1, 0.5, -0.2]))
    return "relu_param { negative_slope: %g }" % slope if slope else ""


def _elu(draw):
    return "elu_param { alpha: %g }" % draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))


def _power(draw):
    return "power_param { power: %g scale: %g shift: %g }" % (
        draw(st.sampled_from([0.0, 1.0, 2.0, 3.0])), draw(st.sampled_from([0.5, 1.0, -2.0])),
        draw(st.sampled_from([0.0, 0.5, -1.0])))


@st.composite
def power_fractional(draw):
    """Non-integer or negative powers need a positive base: shift > |scale x|."""
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw), scale=0.1)
    scale = draw(st.sampled_from([0.5, 1.0, -1.0]))
    shift = float(np.abs(scale * x).max()) + draw(st.sampled_from([0.5, 1.0, 2.0]))
    power = draw(st.sampled_from([0.5, -1.0, 1.5, -0.5]))
    return Case("power_param { power: %g scale: %g shift: %.17g }" % (power, scale, shift), [x])


@st.composite
def exp_case(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw), scale=0.3)
    base = draw(st.sampled_from([-1.0, 2.0, 0.5, 10.0, 0.0, -2.0, 1.0]))
    return Case("exp_param { base: %g scale: %g shift: %g }" % (
        base, draw(st.sampled_from([1.0, 0.5, -1.0])), draw(st.sampled_from([0.0, 0.3]))), [x])


@st.composite
def log_case(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw), scale=0.1)
    scale = draw(st.sampled_from([1.0, 0.5, -1.0]))
    shift = float(np.abs(scale * x).max()) + draw(st.sampled_from([0.5, 2.0]))
    base = draw(st.sampled_from([-1.0, 2.0, 10.0, 0.5, 1.0, 0.0]))
    return Case("log_param { base: %g scale: %g shift: %.17g }" % (base, scale, shift), [x])


@st.composite
def clip_case(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    low = grid(draw, 0.3, -4, 2)
    high = low + grid(draw, 0.3, -1, 6)
    text = "clip_param { min: %g max: %g }" % (low, high)
    if draw(st.booleans()) and draw(st.booleans()):
        text = draw(st.sampled_from(["clip_param { min: %g }" % low, ""]))
    return Case(text, [x])


@st.composite
def threshold_case(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    return Case("threshold_param { threshold: %g }" % grid(draw, 0.3, -3, 3), [x],
                backward=False)


@st.composite
def prelu(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw, min_axes=1))
    shared = draw(st.booleans())
    filler = draw(st.sampled_from(["", "filler { type: 'constant' value: 0.25 }",
                                   "filler { type: 'uniform' min: -0.5 max: 0.5 }"]))
    text = "prelu_param { channel_shared: %s %s }" % ("true" if shared else "false", filler)
    return Case(text, [x])


@st.composite
def dropout(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    ratio = draw(st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0, -0.1]))
    scale = draw(st.sampled_from(["", "scale_train: false"]))
    return Case("dropout_param { dropout_ratio: %g %s }" % (ratio, scale), [x], phase=TEST)


@st.composite
def batch_norm(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=2, max_axes=4)
    if int(np.prod(shp)) // shp[1] < 2:            # one value per channel: no variance
        shp = (2,) + shp[1:]
    x, = distinct(rng, shp)
    use_global = draw(st.sampled_from(["", "use_global_stats: false", "use_global_stats: true"]))
    text = "batch_norm_param { %s moving_average_fraction: %g eps: %g }" % (
        use_global, draw(st.sampled_from([0.999, 0.5, 1.0])),
        draw(st.sampled_from([1e-5, 1e-3, 0.1])))
    phase = draw(st.sampled_from([caffe_pb2.TRAIN, TEST]))
    return Case(text, [x], params=False, phase=phase, threshold=1e-4)


@st.composite
def mvn(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=2, max_axes=5)
    x, = distinct(rng, shp)
    eps = draw(st.sampled_from([1e-9, 1e-3, 0.5]))
    variance = draw(st.sampled_from(["true", "false"]))
    text = "mvn_param { normalize_variance: %s across_channels: %s eps: %g }" % (
        variance, draw(st.sampled_from(["true", "false"])), eps)
    # Caffe's backward leaves eps out of the variance term (mvn.py): exact for eps -> 0
    return Case(text, [x], threshold=1e-4, numeric=eps < 1e-6 or variance == "false")


@st.composite
def lrn(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=3, max_axes=5, max_dim=4) if rarely(draw, 4) else \
        shape(draw, min_axes=4, max_axes=4, max_dim=4)
    x, = distinct(rng, shp, scale=0.3)
    region = draw(st.sampled_from(["ACROSS_CHANNELS", "WITHIN_CHANNEL"]))
    text = "lrn_param { local_size: %d alpha: %g beta: %g k: %g norm_region: %s }" % (
        draw(st.sampled_from([3, 1, 5, 2])), draw(st.sampled_from([1e-4, 0.5, 1.0])),
        draw(st.sampled_from([0.75, 0.5, 1.0])), draw(st.sampled_from([1.0, 2.0])), region)
    return Case(text, [x], threshold=1e-4)


@st.composite
def softmax(draw):
    rng = rng_of(draw)
    shp = shape(draw)
    x, = distinct(rng, shp)
    axis = draw(st.integers(-len(shp) - 1, len(shp)))
    return Case("softmax_param { axis: %d }" % axis, [x])


@st.composite
def swish(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    return Case("swish_param { beta: %g }" % draw(st.sampled_from([1.0, 0.5, 2.0, 0.0])), [x])


CASES = {
    "AbsVal": elementwise(),
    "BNLL": elementwise(),
    "ReLU": elementwise(_relu),
    "ELU": elementwise(_elu),
    "Sigmoid": elementwise(),
    "TanH": elementwise(),
    "Power": st.one_of(elementwise(_power, scale=0.3), power_fractional()),
    "Exp": exp_case(),
    "Log": log_case(),
    "Clip": clip_case(),
    "Threshold": threshold_case(),
    "PReLU": prelu(),
    "Swish": swish(),
    "Dropout": dropout(),
    "BatchNorm": batch_norm(),
    "MVN": mvn(),
    "LRN": lrn(),
    "Softmax": softmax(),
}
