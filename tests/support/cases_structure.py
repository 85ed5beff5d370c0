"""Hypothesis strategies for the layers that move, combine or index values
(concat, slice, reshape, eltwise, reduction, embed, scale/bias...) and the
ones with no bottom (Input, DummyData, Parameter)."""
import numpy as np
from hypothesis import strategies as st

from .cases_neuron import rarely, rng_of, shape
from .properties import Case, distinct


def _axis(draw, ndim):
    """An axis of an ndim-axis bottom, now and then one out of range."""
    if rarely(draw, 5):
        return draw(st.sampled_from([ndim, -ndim - 1]))
    return draw(st.integers(-ndim, ndim - 1))


@st.composite
def concat(draw):
    rng = rng_of(draw)
    base = shape(draw, min_axes=1, max_axes=4)
    axis = _axis(draw, len(base))
    k = draw(st.integers(1, 3))
    shapes = []
    for _ in range(k):
        s = list(base)
        if -len(base) <= axis < len(base):
            s[axis] = draw(st.integers(1, 3))
        if rarely(draw):                                      # a misfit bottom
            s[0] += 1
        shapes.append(tuple(s))
    text = "concat_param { axis: %d }" % axis
    if rarely(draw, 5):
        text = "concat_param { concat_dim: %d }" % abs(axis)
    return Case(text, distinct(rng, *shapes), grad=list(range(k)))


@st.composite
def slice_layer(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=1, max_axes=4, max_dim=4)
    axis = _axis(draw, len(shp))
    n_top = draw(st.integers(1, 3))
    size = shp[axis] if -len(shp) <= axis < len(shp) else 4
    points = sorted(draw(st.lists(st.integers(0, size), min_size=n_top - 1,
                                  max_size=n_top - 1)))
    text = "slice_param { axis: %d %s }" % (axis, " ".join("slice_point: %d" % p
                                                          for p in points))
    if draw(st.booleans()):
        text = "slice_param { axis: %d }" % axis             # equal parts
    x, = distinct(rng, shp)
    return Case(text, [x], n_top=n_top)


@st.composite
def split(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    return Case("", [x], n_top=draw(st.integers(1, 3)))


def _one_bottom(draw, shp, text):
    """A case of one bottom of shape ``shp``."""
    x, = distinct(rng_of(draw), shp)
    return Case(text, [x])


@st.composite
def flatten(draw):
    shp = shape(draw, min_axes=1, max_axes=5)
    return _one_bottom(draw, shp, "flatten_param { axis: %d end_axis: %d }"
                       % (_axis(draw, len(shp)), _axis(draw, len(shp))))


@st.composite
def reshape(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=1, max_axes=4, max_dim=4)
    count = int(np.prod(shp))
    dims = []
    rest = count
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from([1, 2, 3, 0, -1]))
        dims.append(d)
        if d > 0 and rest % d == 0:
            rest //= d
    if draw(st.booleans()):
        dims.append(-1 if -1 not in dims else rest)
    axis = _axis(draw, len(shp))
    num_axes = draw(st.integers(-1, len(shp)))
    text = "reshape_param { shape { %s } axis: %d num_axes: %d }" % (
        " ".join("dim: %d" % d for d in dims), axis, num_axes)
    x, = distinct(rng, shp)
    return Case(text, [x])


@st.composite
def tile(draw):
    shp = shape(draw, min_axes=1, max_axes=4)
    return _one_bottom(draw, shp, "tile_param { axis: %d tiles: %d }"
                       % (_axis(draw, len(shp)), draw(st.integers(0, 3))))


@st.composite
def eltwise(draw):
    rng = rng_of(draw)
    shp = shape(draw)
    k = draw(st.sampled_from([2, 3, 1]))
    op = draw(st.sampled_from(["SUM", "PROD", "MAX"]))
    coeffs = ""
    if draw(st.booleans()):
        n = k + 1 if rarely(draw, 5) else k
        coeffs = " ".join("coeff: %g" % draw(st.sampled_from([1.0, -1.0, 0.5, 2.0]))
                          for _ in range(n))
    stable = draw(st.sampled_from(["", "stable_prod_grad: false"]))
    return Case("eltwise_param { operation: %s %s %s }" % (op, coeffs, stable),
                distinct(rng, *[shp] * k), grad=list(range(k)))


@st.composite
def reduction(draw):
    shp = shape(draw)
    return _one_bottom(draw, shp, "reduction_param { operation: %s axis: %d coeff: %g }" % (
        draw(st.sampled_from(["SUM", "ASUM", "SUMSQ", "MEAN"])), _axis(draw, len(shp)),
        draw(st.sampled_from([1.0, -0.5, 2.0]))))


@st.composite
def argmax(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=1, max_axes=4, max_dim=4)
    x, = distinct(rng, shp)
    axis = "" if draw(st.booleans()) else "axis: %d" % _axis(draw, len(shp))
    return Case("argmax_param { out_max_val: %s top_k: %d %s }" % (
        draw(st.sampled_from(["true", "false"])), draw(st.integers(0, 4)), axis), [x],
        backward=False)


@st.composite
def filter_layer(draw):
    rng = rng_of(draw)
    n = draw(st.integers(1, 4))
    k = draw(st.integers(1, 2))
    data = distinct(rng, *[(n,) + shape(draw, min_axes=0, max_axes=2) for _ in range(k)])
    selector = rng.integers(0, 2, draw(st.sampled_from([n, n, n + 1]))).astype(np.float64)
    return Case("", data + [selector], n_top=k, grad=list(range(k)))


@st.composite
def batch_reindex(draw):
    rng = rng_of(draw)
    shp = shape(draw, min_axes=1, max_axes=3)
    x, = distinct(rng, shp)
    m = draw(st.integers(0, 4))
    index = rng.integers(0, shp[0] + draw(st.sampled_from([0, 0, 0, 1])), m).astype(float)
    return Case("", [x, index])


@st.composite
def silence(draw):
    rng = rng_of(draw)
    k = draw(st.integers(1, 3))
    return Case("", distinct(rng, *[shape(draw) for _ in range(k)]), n_top=0,
                grad=list(range(k)), numeric=False)     # no top: its backward zeroes


def _blob_shape(draw, min_axes=0):
    return "shape { %s }" % " ".join("dim: %d" % d for d in shape(draw, min_axes=min_axes,
                                                                 max_axes=4, min_dim=0))


@st.composite
def parameter(draw):
    return Case("parameter_param { %s }" % _blob_shape(draw), [], grad=[])


@st.composite
def input_layer(draw):
    k = draw(st.integers(1, 3))
    shapes = " ".join(_blob_shape(draw) for _ in range(draw(st.sampled_from([1, k, 0]))))
    return Case("input_param { %s }" % shapes, [], n_top=k, backward=False)


FILLER_TEXT = ["data_filler { type: 'constant' value: 2 }",
               "data_filler { type: 'gaussian' std: 0.5 }",
               "data_filler { type: 'uniform' min: -1 max: 1 }",
               "data_filler { type: 'xavier' }", "data_filler { type: 'positive_unitball' }",
               "data_filler { type: 'bilinear' }", "data_filler { type: 'nope' }"]


@st.composite
def dummy_data(draw):
    k = draw(st.integers(1, 3))
    fillers = " ".join(draw(st.sampled_from(FILLER_TEXT))
                       for _ in range(draw(st.sampled_from([0, 1, k]))))
    if draw(st.integers(0, 4)):
        shapes = " ".join(_blob_shape(draw, 1) for _ in range(draw(st.sampled_from([1, k]))))
    else:
        shapes = " ".join("num: %d channels: %d height: %d width: %d" % tuple(
            draw(st.integers(1, 3)) for _ in range(4)) for _ in range(k))
    return Case("dummy_data_param { %s %s }" % (shapes, fillers), [], n_top=k,
                backward=False)


@st.composite
def embed(draw):
    rng = rng_of(draw)
    input_dim = draw(st.sampled_from([3, 1, 4, 0]))
    indices = rng.integers(0, max(input_dim, 1) + rarely(draw, 4),
                           shape(draw, max_axes=3)).astype(np.float64)
    text = "embed_param { num_output: %d input_dim: %d bias_term: %s %s }" % (
        draw(st.sampled_from([2, 1, 3, 0])), input_dim, draw(st.sampled_from(["true", "false"])),
        "weight_filler { type: 'gaussian' std: 1 } bias_filler { type: 'gaussian' std: 1 }")
    return Case(text, [indices], grad=[])                # indices have no gradient


def scale_or_bias(message, has_bias_term):
    @st.composite
    def build(draw):
        rng = rng_of(draw)
        shp = shape(draw, min_axes=1, max_axes=4)
        axis = _axis(draw, len(shp))
        first = axis % len(shp) if -len(shp) <= axis < len(shp) else 0
        two = draw(st.booleans())
        if two:      # the factor is a bottom of shape shp[axis:axis + k]
            k = draw(st.integers(0, len(shp) - first))
            operand = shp[first:first + k]
            if rarely(draw):
                operand = operand + (2,)
            text = "%s { axis: %d }" % (message, axis)
            x, y = distinct(rng, shp, operand)
            return Case(text, [x, y], grad=[0, 1])
        num_axes = draw(st.integers(-1, len(shp) - first + 1))
        filler = "filler { type: 'uniform' min: -1 max: 1 }"
        extra = (" bias_term: true bias_filler { type: 'gaussian' std: 1 }"
                 if has_bias_term and draw(st.booleans()) else "")
        x, = distinct(rng, shp)
        return Case("%s { axis: %d num_axes: %d %s%s }" % (message, axis, num_axes, filler,
                                                           extra), [x])
    return build()


CASES = {
    "Concat": concat(),
    "Slice": slice_layer(),
    "Split": split(),
    "Flatten": flatten(),
    "Reshape": reshape(),
    "Tile": tile(),
    "Eltwise": eltwise(),
    "Reduction": reduction(),
    "ArgMax": argmax(),
    "Filter": filter_layer(),
    "BatchReindex": batch_reindex(),
    "Silence": silence(),
    "Parameter": parameter(),
    "Input": input_layer(),
    "DummyData": dummy_data(),
    "Embed": embed(),
    "Scale": scale_or_bias("scale_param", True),
    "Bias": scale_or_bias("bias_param", False),
}
