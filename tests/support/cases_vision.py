"""Hypothesis strategies for the vision layers (convolution, pooling, crop...)
and the low-bit ones (binary/ternary/QNN/weight-search convolutions and
inner products, activation quantizers)."""
from hypothesis import strategies as st

from pycaffe_lowbit.proto import caffe_pb2

from .cases_neuron import rarely, rng_of, shape
from .properties import Case, distinct

TEST = caffe_pb2.TEST
FILLERS = ["weight_filler { type: 'gaussian' std: 0.5 }",
           "weight_filler { type: 'uniform' min: -1 max: 1 }",
           "weight_filler { type: 'xavier' }", "weight_filler { type: 'msra' }"]
BIAS = ["", "bias_filler { type: 'constant' value: 0.2 }",
        "bias_filler { type: 'gaussian' std: 0.3 }"]


def _repeated(draw, name, values, spatial):
    """``name: v`` once (all axes) or once per spatial axis, or not at all."""
    how = draw(st.sampled_from(["none", "one", "each"]))
    if how == "none":
        return ""
    count = 1 if how == "one" else spatial
    return " ".join("%s: %d" % (name, draw(st.sampled_from(values))) for _ in range(count))


def conv_geometry(draw, spatial):
    """kernel/stride/pad/dilation text, N-D or (2-D only) the _h/_w spellings."""
    if spatial == 2 and rarely(draw, 4):
        return "kernel_h: %d kernel_w: %d stride_h: %d stride_w: %d pad_h: %d pad_w: %d" % (
            tuple(draw(st.integers(1, 3)) for _ in range(2))
            + tuple(draw(st.integers(1, 2)) for _ in range(2))
            + tuple(draw(st.integers(0, 1)) for _ in range(2)))
    kernel = _repeated(draw, "kernel_size", [1, 2, 3], spatial) or "kernel_size: 2"
    return " ".join([kernel, _repeated(draw, "stride", [1, 2], spatial),
                     _repeated(draw, "pad", [0, 1, 2], spatial),
                     _repeated(draw, "dilation", [1, 2], spatial)])


def conv_like(message="convolution_param", extra=lambda draw: "", params=True, weights=True,
              phase=None, numeric_params=True):
    @st.composite
    def build(draw):
        rng = rng_of(draw)
        spatial = draw(st.integers(1, 2))
        group = draw(st.sampled_from([1, 1, 2]))
        channels = group * draw(st.integers(1, 2))
        n = draw(st.integers(1, 2))
        size = tuple(draw(st.integers(2, 4)) for _ in range(spatial))
        x, = distinct(rng, (n, channels) + size, scale=0.3)
        fields = conv_geometry(draw, spatial)
        if weights:
            fields += " num_output: %d group: %d bias_term: %s %s %s" % (
                group * draw(st.sampled_from([1, 2, 0])), group, draw(st.sampled_from(["true", "false"])),
                draw(st.sampled_from(FILLERS)), draw(st.sampled_from(BIAS)))
        if draw(st.booleans()):
            fields += " force_nd_im2col: true"
        text = "%s { %s } %s" % (message, fields, extra(draw))
        return Case(text, [x], params=params and numeric_params,
                    phase=TEST if phase is None else phase)
    return build()


@st.composite
def pooling(draw):
    rng = rng_of(draw)
    shp = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 5)),
           draw(st.integers(1, 5)))
    if rarely(draw, 6):
        shp = shp[:draw(st.integers(2, 3))]           # not 4-D: refused
    pool = draw(st.sampled_from(["MAX", "AVE", "STOCHASTIC"]))
    # STOCHASTIC pools activations (>= 0; Caffe divides by their sum)
    x, = distinct(rng, shp, positive=pool == "STOCHASTIC")
    if rarely(draw, 4):
        geometry = "global_pooling: true"
    elif draw(st.booleans()):
        geometry = "kernel_size: %d stride: %d pad: %d" % (
            draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 2)))
    else:
        geometry = "kernel_h: %d kernel_w: %d stride_h: %d stride_w: %d pad_h: %d pad_w: %d" % (
            draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2)),
            draw(st.integers(1, 2)), draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    rounding = draw(st.sampled_from(["", "round_mode: FLOOR", "round_mode: CEIL"]))
    n_top = 2 if pool == "MAX" and draw(st.booleans()) else 1   # the argmax mask top
    text = "pooling_param { pool: %s %s %s }" % (pool, geometry, rounding)
    # STOCHASTIC draws at random in TRAIN: checked in TEST (a weighted average).
    # A window wholly past the image (ceil mode, stride > kernel) is Caffe's
    # -FLT_MAX (MAX) or 0 / 0 (AVE), kept as Caffe: no finite differences there.
    empty = pool != "STOCHASTIC" and _empty_window(text, x.shape)
    return Case(text, [x], n_top=n_top,
                phase=TEST if pool == "STOCHASTIC" else caffe_pb2.TRAIN,
                numeric=not empty, finite=not (empty and pool == "AVE"))


def _empty_window(text, shp):
    """Whether Caffe's output-size rule leaves a window starting past the image."""
    import re
    if len(shp) != 4 or "global_pooling" in text:
        return False
    get = dict((k, int(v)) for k, v in re.findall(r"(\w+): (\d+)", text))
    floor = "FLOOR" in text
    for axis, size in (("h", shp[2]), ("w", shp[3])):
        k = get.get("kernel_" + axis, get.get("kernel_size", 1))
        s = get.get("stride_" + axis, get.get("stride", 1))
        p = get.get("pad_" + axis, get.get("pad", 0))
        if size + 2 * p < k:
            return False
        span = size + 2 * p - k
        out = (span // s if floor else -(-span // s)) + 1
        if p and (out - 1) * s >= size + p:
            out -= 1
        if (out - 1) * s - p >= size:
            return True
    return False


@st.composite
def spp(draw):
    rng = rng_of(draw)
    pool = draw(st.sampled_from(["MAX", "AVE", "STOCHASTIC"]))
    x, = distinct(rng, (draw(st.integers(1, 2)), draw(st.integers(1, 2)),
                        draw(st.sampled_from([4, 5, 6, 2, 1])),
                        draw(st.sampled_from([4, 5, 6, 2, 1]))), positive=pool == "STOCHASTIC")
    return Case("spp_param { pyramid_height: %d pool: %s }" % (
        draw(st.sampled_from([1, 2, 3, 0])), pool),
                [x], phase=TEST, backward=pool != "STOCHASTIC", numeric=pool != "STOCHASTIC")


@st.composite
def crop(draw):
    rng = rng_of(draw)
    big = shape(draw, min_axes=2, max_axes=4, max_dim=4)
    axis = draw(st.integers(-len(big), len(big) - 1))
    first = axis % len(big)
    small = big[:first] + tuple(draw(st.integers(1, d)) for d in big[first:])
    offsets = [draw(st.integers(0, 2)) for _ in range(draw(st.sampled_from([0, 1,
                                                                                len(big) - first])))]
    x, = distinct(rng, big)
    ref = rng.standard_normal(small)
    text = "crop_param { axis: %d %s }" % (axis, " ".join("offset: %d" % o for o in offsets))
    return Case(text, [x, ref])


@st.composite
def inner_product(draw, extra=lambda draw: "", inside=False, numeric_params=True,
                  phase=caffe_pb2.TRAIN):
    """``extra``: more text, after the inner_product_param message or, with
    ``inside``, in it."""
    rng = rng_of(draw)
    shp = shape(draw, min_axes=1, max_axes=4)
    x, = distinct(rng, shp, scale=0.3)
    axis = draw(st.integers(-len(shp), len(shp) - 1))
    body = "num_output: %d bias_term: %s axis: %d transpose: %s %s %s" % (
        draw(st.sampled_from([2, 1, 3, 0])), draw(st.sampled_from(["true", "false"])), axis,
        draw(st.sampled_from(["true", "false"])), draw(st.sampled_from(FILLERS)),
        draw(st.sampled_from(BIAS)))
    more = extra(draw)
    text = ("inner_product_param { %s %s }" % (body, more) if inside else
            "inner_product_param { %s } %s" % (body, more))
    return Case(text, [x], params=numeric_params, phase=phase)


def _sq(draw):
    """The SQ fork's ratio: 100 (all quantized) keeps forward deterministic."""
    return "" if draw(st.booleans()) else "sq: true ratio: 100"


def _binary_hwgq(draw):
    if draw(st.booleans()):
        return ""
    return "binary_convolution_param { use_alpha: %s use_binarization: %s }" % (
        draw(st.sampled_from(["true", "false"])), draw(st.sampled_from(["true", "false"])))


def _binary_ip_hwgq(draw):
    return _binary_hwgq(draw).replace("convolution", "inner_product")


def _qnn_weights(draw):
    return "qnn_weight_param { nb: %d symmetric: %s }" % (
        draw(st.sampled_from([0, 1, 2, 4, 8])), draw(st.sampled_from(["true", "false"])))


def _weight_search(draw):
    values = draw(st.sampled_from(['value_set: "1b"', 'value_set: "po2-2b"', 'value_set: "int-3b"',
                                   "value: -1 value: 1", "value: -0.5 value: 0 value: 0.5"]))
    if rarely(draw, 4):
        values = draw(st.sampled_from(['value_set: "nope"', "value: 1", "",
                                       'value: 1 value_set: "1b"']))
    return "weight_search_param { %s init_temperature: %g mode: %s }" % (
        values, draw(st.sampled_from([1.0, 0.1, 1.0, 0.0])),
        draw(st.sampled_from(["HARD", "SOFT"])))


@st.composite
def quant(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    forward = draw(st.sampled_from(["hwgq", "sign", "hard_tanh", "relu", "nope"]))
    backward = draw(st.sampled_from(["relu", "hard_tanh", "nope"]))
    levels = draw(st.sampled_from(["", "centers: 0.5 centers: 1.5",
                                   "centers: 0.538 centers: 1.076 centers: 1.614",
                                   "thrs: 0.3 thrs: 0.9", "centers: 1 centers: 0.5"]))
    text = "quant_param { forward_func: '%s' backward_func: '%s' clip_thr: %g %s }" % (
        forward, backward, draw(st.sampled_from([0.0, 1.0, 2.0])), levels)
    # a straight-through estimator: backward runs, the numeric gradient differs
    return Case(text, [x], numeric=False)


@st.composite
def qnn_activation(draw):
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    return Case("qnn_activation_param { nb: %d nonlinearity: %s }" % (
        draw(st.sampled_from([0, 1, 2, 4])), draw(st.sampled_from(["HARDTANH", "RELU"]))),
        [x], numeric=False)


CASES = {
    "Convolution": conv_like(),
    "Deconvolution": conv_like(),
    "Im2col": conv_like(weights=False, params=False),
    "Pooling": pooling(),
    "SPP": spp(),
    "Crop": crop(),
    "InnerProduct": inner_product(),
    # Quantized weights: the input gradient is exact for the quantized weight,
    # the weight gradient is straight-through (not numeric).
    "BinaryConvolution": conv_like(extra=_binary_hwgq, numeric_params=False),
    "TernaryConvolution": conv_like(numeric_params=False),
    "QNNConvolution": conv_like(extra=_qnn_weights, numeric_params=False),
    "WeightSearchConvolution": conv_like(extra=_weight_search, numeric_params=False),
    "BinaryInnerProduct": inner_product(extra=_binary_ip_hwgq, numeric_params=False),
    "TernaryInnerProduct": inner_product(extra=_sq, inside=True, numeric_params=False),
    "QNNInnerProduct": inner_product(extra=_qnn_weights, numeric_params=False),
    "WeightSearchInnerProduct": inner_product(extra=_weight_search, numeric_params=False,
                                              phase=TEST),
    "Quant": quant(),
    "QNNActivation": qnn_activation(),
}
