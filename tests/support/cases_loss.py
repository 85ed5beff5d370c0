"""Hypothesis strategies for the loss layers, Accuracy and the recurrent ones
(RNN, LSTM, LSTMUnit). Labels are drawn as integers, sometimes out of range
or equal to ``ignore_label``; the label bottoms get no gradient."""
import numpy as np
from hypothesis import strategies as st

from .cases_neuron import rarely, rng_of, shape
from .properties import Case, distinct, labels

NORMALIZATION = ["", "normalization: FULL", "normalization: VALID", "normalization: BATCH_SIZE",
                 "normalization: NONE", "normalize: false", "normalize: true"]


def _loss_param(draw, classes, ignore=True):
    parts = [draw(st.sampled_from(NORMALIZATION))]
    if ignore and draw(st.booleans()):
        parts.append("ignore_label: %d" % draw(st.integers(-1, classes)))
    return "loss_param { %s }" % " ".join(parts)


def _weight(draw):
    return draw(st.sampled_from(["", "", "loss_weight: 2", "loss_weight: 0.5"]))


def _class_axis(draw, min_axes=2):
    """(scores shape, axis, classes, outer x inner label shape)."""
    shp = shape(draw, min_axes=min_axes, max_axes=4)
    axis = draw(st.integers(-len(shp), len(shp) - 1))
    a = axis % len(shp)
    return shp, axis, shp[a], shp[:a] + shp[a + 1:]


@st.composite
def softmax_loss(draw):
    rng = rng_of(draw)
    shp, axis, classes, label_shape = _class_axis(draw)
    x, = distinct(rng, shp)
    extra = draw(st.sampled_from([0, 0, 0, 1]))        # now and then a label out of range
    y = labels(rng, label_shape or (1,), classes + extra)
    text = "%s softmax_param { axis: %d } %s" % (_loss_param(draw, classes), axis,
                                                  _weight(draw))
    n_top = draw(st.sampled_from([1, 1, 2]))            # top 1: the probabilities
    # Caffe's backward starts from the loss only (the probabilities' diff is ignored)
    return Case(text, [x, y], n_top=n_top, numeric_tops=[0])


@st.composite
def euclidean(draw):
    rng = rng_of(draw)
    shp = shape(draw)
    other = shp + (2,) if rarely(draw) else shp
    a, b = distinct(rng, shp, other)
    return Case(_weight(draw), [a, b], grad=[0, 1])


@st.composite
def hinge(draw):
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    x, = distinct(rng, (n, c))
    y = labels(rng, (n,), c + draw(st.sampled_from([0, 0, 1])))
    return Case("hinge_loss_param { norm: %s } %s" % (draw(st.sampled_from(["L1", "L2"])),
                                                      _weight(draw)), [x, y])


@st.composite
def sigmoid_cross_entropy(draw):
    rng = rng_of(draw)
    shp = shape(draw)
    x, = distinct(rng, shp)
    t = rng.random(shp + (2,) if rarely(draw) else shp)
    return Case("%s %s" % (_loss_param(draw, 2, ignore=False), _weight(draw)), [x, t])


@st.composite
def infogain(draw):
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    p = rng.random((n, c)) * 0.8 + 0.1                   # probabilities, away from 0
    y = labels(rng, (n,), c)
    h = rng.random((c + 1, c + 1) if rarely(draw) else (c, c))
    n_top = draw(st.sampled_from([1, 1, 2]))
    return Case("%s %s" % (_loss_param(draw, c), _weight(draw)), [p, y, h], n_top=n_top,
                numeric_tops=[0])


@st.composite
def multinomial(draw):
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    p = rng.random((n, c)) * 0.8 + 0.1
    y = labels(rng, (n,), c + draw(st.sampled_from([0, 0, 1])))
    return Case(_weight(draw), [p, y])


@st.composite
def contrastive(draw):
    rng = rng_of(draw)
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    a, b = distinct(rng, (n, c, 1, 1), (n, c, 1, 1), scale=0.2)
    sim = rng.integers(0, 2, (n, 1, 1, 1)).astype(np.float64)
    margin = draw(st.sampled_from([1.0, 2.0, 0.5]))
    d = np.sqrt(((a - b) ** 2).sum(axis=1)).reshape(-1)
    legacy = draw(st.sampled_from(["true", "false"]))
    # the hinge max(margin - d, 0) has a kink at d = margin: keep clear of it;
    # Caffe's non-legacy gradient divides by d + 1e-4: exact to about 1e-4 / d
    numeric = bool(np.all(np.abs(d - margin) > 1e-3) and d.min() > 0.05)
    threshold = 1e-5 if legacy == "true" else 1e-5 + 2e-4 / max(d.min(), 0.05)
    return Case("contrastive_loss_param { margin: %g legacy_version: %s } %s" % (
        margin, legacy, _weight(draw)), [a, b, sim],
        grad=[0, 1], numeric=numeric, threshold=threshold)


@st.composite
def accuracy(draw):
    rng = rng_of(draw)
    shp, axis, classes, label_shape = _class_axis(draw)
    x, = distinct(rng, shp)
    y = labels(rng, label_shape or (1,), classes + draw(st.sampled_from([0, 0, 1])))
    ignore = " ignore_label: %d" % draw(st.integers(0, classes)) if draw(st.booleans()) else ""
    return Case("accuracy_param { top_k: %d axis: %d%s }" % (draw(st.integers(0, 3)), axis,
                                                            ignore),
                [x, y], n_top=draw(st.integers(1, 2)), backward=False)


def recurrent(kind):
    @st.composite
    def build(draw):
        rng = rng_of(draw)
        t, n = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        item = shape(draw, min_axes=1, max_axes=2, max_dim=2)
        x, = distinct(rng, (t, n) + item, scale=0.3)
        cont = (rng.random((t, n)) > 0.3).astype(np.float64)
        cont[0] = 0
        bottoms = [x, cont]
        grad = [0]
        if draw(st.booleans()):                            # a static input x_static
            static, = distinct(rng, (n, draw(st.integers(1, 2))), scale=0.3)
            bottoms.append(static)
            grad.append(2)
        expose = draw(st.booleans())
        hidden = 2 if kind == "LSTM" else 1
        num_output = draw(st.sampled_from([2, 1, 3, 0]))
        checked = list(grad)
        if expose:      # the initial state as bottoms, the final one as tops
            for _ in range(hidden):
                h0, = distinct(rng, (1, n, max(num_output, 1)), scale=0.2)
                bottoms.append(h0)
                grad.append(len(bottoms) - 1)
        text = ("recurrent_param { num_output: %d expose_hidden: %s "
                "weight_filler { type: 'uniform' min: -0.5 max: 0.5 } "
                "bias_filler { type: 'uniform' min: -0.2 max: 0.2 } }"
                % (num_output, "true" if expose else "false"))
        # Caffe's backward starts from the sequence output only and gives the
        # initial state no gradient (recurrent.py): checked through top 0, for x
        return Case(text, bottoms, n_top=1 + (hidden if expose else 0), grad=grad,
                    numeric_bottoms=checked, numeric_tops=[0], threshold=1e-4)
    return build()


@st.composite
def lstm_unit(draw):
    rng = rng_of(draw)
    n, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c_prev, gates = distinct(rng, (1, n, d), (1, n, 4 * d + 1 if rarely(draw) else 4 * d),
                             scale=0.3)
    cont = (rng.random((1, n)) > 0.4).astype(np.float64)
    return Case("", [c_prev, gates, cont], n_top=2, grad=[0, 1], threshold=1e-4)


CASES = {
    "SoftmaxWithLoss": softmax_loss(),
    "EuclideanLoss": euclidean(),
    "HingeLoss": hinge(),
    "SigmoidCrossEntropyLoss": sigmoid_cross_entropy(),
    "InfogainLoss": infogain(),
    "MultinomialLogisticLoss": multinomial(),
    "ContrastiveLoss": contrastive(),
    "Accuracy": accuracy(),
    "RNN": recurrent("RNN"),
    "LSTM": recurrent("LSTM"),
    "LSTMUnit": lstm_unit(),
}
