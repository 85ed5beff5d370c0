"""Export a weight-searched net as a plain one, and check the exported values.

``export_searched(model, weights)`` takes the searched net (a NetParameter)
and its trained weights (a NetParameter with blobs, as read from a
.caffemodel) and returns the pair for the plain net: every
WeightSearchConvolution / WeightSearchInnerProduct layer becomes a
Convolution / InnerProduct (its ``weight_search_param`` dropped) whose weight
is W = v[argmax_k a] of shape a.shape[:-1], the value the hard forward uses in
TEST; the bias and every other layer are copied unchanged. The plain net
computes exactly what the searched net computes in TEST.

``check_in_set(model, plain_weights)`` reports, for every searched layer of
``model``, how many weights of the layer of that name in ``plain_weights``
are outside its value set: a list of (layer, count, outside, values).
"""
import numpy as np

from ..formats.blobproto import array_from_proto, array_to_proto
from ..layers.weight_search import layer_values
from ..proto import caffe_pb2

PLAIN = {"WeightSearchConvolution": "Convolution",
         "WeightSearchInnerProduct": "InnerProduct"}


class ExportError(ValueError):
    """The model and the weights do not fit together."""


def _searched(model):
    """{name: value tuple} of the searched layers of ``model``."""
    out = {}
    for lp in model.layer:
        if lp.type in PLAIN:
            try:
                out[lp.name] = np.asarray(layer_values(lp), np.float64)
            except ValueError as exc:
                raise ExportError("layer '%s': %s" % (lp.name, exc)) from None
    return out


def export_searched(model, weights):
    """(plain model, plain weights): see the module docstring."""
    sets = _searched(model)
    plain = caffe_pb2.NetParameter()
    plain.CopyFrom(model)
    for lp in plain.layer:
        if lp.type in PLAIN:
            lp.type = PLAIN[lp.type]
            lp.ClearField("weight_search_param")
    out = caffe_pb2.NetParameter()
    out.CopyFrom(weights)
    found = set()
    for lp in out.layer:
        if lp.name not in sets:
            continue
        if lp.type not in PLAIN and lp.type not in PLAIN.values():
            raise ExportError("layer '%s' of the weights is a %s, not a weight-search layer"
                              % (lp.name, lp.type))
        if not len(lp.blobs):
            raise ExportError("layer '%s' has no blobs in the weights" % lp.name)
        values = sets[lp.name]
        logits = array_from_proto(lp.blobs[0])
        if logits.ndim < 2 or logits.shape[-1] != values.size:
            raise ExportError("layer '%s': logits of shape %s do not end in the %d values "
                              "of its set" % (lp.name, logits.shape, values.size))
        w = values[np.argmax(logits, axis=-1)].astype(np.float32)
        lp.type = PLAIN.get(lp.type, lp.type)
        lp.ClearField("weight_search_param")
        lp.blobs[0].Clear()
        array_to_proto(w, proto=lp.blobs[0])
        found.add(lp.name)
    missing = sorted(set(sets) - found)
    if missing:
        raise ExportError("the weights have no layer named %s" % ", ".join(missing))
    return plain, out


def check_in_set(model, plain_weights):
    """[(layer, count, outside, values)] for every searched layer of ``model``."""
    by_name = {lp.name: lp for lp in plain_weights.layer}
    report = []
    for name, values in _searched(model).items():
        if name not in by_name or not len(by_name[name].blobs):
            raise ExportError("the weights have no blobs for layer '%s'" % name)
        w = array_from_proto(by_name[name].blobs[0]).astype(np.float64).ravel()
        inside = np.isin(w, values.astype(np.float32).astype(np.float64))
        report.append((name, int(w.size), int((~inside).sum()), tuple(values.tolist())))
    return report
