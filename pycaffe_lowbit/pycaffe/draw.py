"""pycaffe's ``caffe.draw``: a NetParameter as a Graphviz graph (through pydot).

Layers are boxes (``record`` nodes) labelled with their name, type and key
parameters (kernel size, stride and pad for convolution and pooling);
convolutions are red, pooling orange, inner products purple, other layers
blue, and in-place layers (one bottom that is also their top) green. Blobs are
grey octagons. Edges out of Data, Convolution and InnerProduct layers carry the
batch size or the number of outputs.

Differences from BVLC's draw.py, all in what is drawn, not in the API:
every blob is an octagon (pycaffe leaves output-only blobs as plain ellipses);
node ids are ``<layer>_<type>`` and ``<blob>_blob`` with the text in the
``label`` attribute (pycaffe uses the label as the id, so two layers with the
same label merged); non-square kernels show as ``HxW``; a rule without a phase
does not exclude a layer (Caffe's NetStateRule semantics); V0/V1 nets are
upgraded first; ``ext='raw'`` gives the DOT source without running Graphviz.

Needs ``pydot`` (pip install pydot) and Graphviz's ``dot`` program
(apt-get install graphviz) to render. Errors keep the types pycaffe's pydot
raises: no ``dot`` is ``GraphvizNotFoundError`` (FileNotFoundError, and
RuntimeError), a format ``dot`` cannot write is ``DrawFormatError``
(AssertionError, and ValueError).
"""
import errno
import os
import shutil

from ..proto import caffe_pb2

LAYER_STYLE_DEFAULT = {"shape": "record", "fillcolor": "#6495ED", "style": "filled"}
NEURON_LAYER_STYLE = {"shape": "record", "fillcolor": "#90EE90", "style": "filled"}
BLOB_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}

_LAYER_COLORS = {"Convolution": "#FF5050", "Deconvolution": "#FF5050",
                 "Pooling": "#FF9900", "InnerProduct": "#CC33FF"}
_LEARNING_TYPES = ("Convolution", "Deconvolution", "InnerProduct")


def _pydot():
    try:
        import pydot
    except ImportError as exc:
        raise ImportError("caffe.draw needs pydot: pip install pydot "
                          "(and Graphviz: apt-get install graphviz)") from exc
    return pydot


def _quote(text, record=False):
    """A DOT double-quoted string; for a record-shape label, the record
    specials ``{}|<>`` are escaped too."""
    text = str(text).replace("\\", "\\\\").replace('"', '\\"')
    for ch in "{}|<>" if record else "":
        text = text.replace(ch, "\\" + ch)
    return '"%s"' % text.replace("\n", "\\n")


def get_pooling_types_dict():
    """Pooling method number -> name (0 -> 'MAX' ...)."""
    return {v: k for k, v in caffe_pb2.PoolingParameter.PoolMethod.items()}


def get_edge_label(layer):
    """The label on a layer's output edges: batch size or number of outputs."""
    if layer.type == "Data":
        return "Batch %d" % layer.data_param.batch_size
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return '""'


def get_layer_lr_mult(layer):
    """(weight lr_mult, bias lr_mult) of a Convolution/Deconvolution/InnerProduct layer."""
    if layer.type not in _LEARNING_TYPES:
        raise ValueError("%s layers do not have a learning rate multiplier" % layer.type)
    mults = [p.lr_mult for p in layer.param[:2]]
    return tuple(mults + [1.0] * (2 - len(mults)))


def _hw(values, h, w, default):
    """A spatial value from Caffe's repeated field or its _h/_w pair, as text."""
    if h or w:
        return str(h) if h == w else "%dx%d" % (h, w)
    return "%d" % (values[0] if len(values) else default)


def get_layer_label(layer, rankdir, display_lrm=False):
    """A layer's node text: name, (type), spatial parameters, lr multipliers.
    Parts are joined by spaces for vertical layouts, by newlines otherwise."""
    separator = " " if rankdir in ("TB", "BT") else "\n"
    parts = [layer.name]
    if layer.type == "Pooling":
        p = layer.pooling_param
        parts.append("(%s %s)" % (layer.type, get_pooling_types_dict()[p.pool]))
        if p.global_pooling:
            parts.append("global")
        else:
            parts += ["kernel size: " + _hw([p.kernel_size], p.kernel_h, p.kernel_w, 0),
                      "stride: " + _hw([p.stride], p.stride_h, p.stride_w, 1),
                      "pad: " + _hw([p.pad], p.pad_h, p.pad_w, 0)]
    else:
        parts.append("(%s)" % layer.type)
        if layer.type in ("Convolution", "Deconvolution"):
            c = layer.convolution_param
            parts += ["kernel size: " + _hw(c.kernel_size, c.kernel_h, c.kernel_w, 1),
                      "stride: " + _hw(c.stride, c.stride_h, c.stride_w, 1),
                      "pad: " + _hw(c.pad, c.pad_h, c.pad_w, 0)]
    if display_lrm and layer.type in _LEARNING_TYPES:
        lrm0, lrm1 = get_layer_lr_mult(layer)
        if lrm0 or lrm1:
            parts.append("lr mult: %.1f, %.1f" % (lrm0, lrm1))
    return separator.join(parts)


def choose_color_by_layertype(layertype):
    return _LAYER_COLORS.get(layertype, LAYER_STYLE_DEFAULT["fillcolor"])


def _included(layer, phase):
    """pycaffe's phase filter: include rules (any matches) or exclude rules."""
    if phase is None:
        return True
    if len(layer.include) and len(layer.exclude):
        raise ValueError("layer %s has both include and exclude specified." % layer.name)

    def hit(rule):
        return not rule.HasField("phase") or rule.phase == phase
    if len(layer.include):
        return any(hit(r) for r in layer.include)
    return not any(hit(r) for r in layer.exclude)


def _as_net_param(caffe_net):
    if isinstance(caffe_net, (str, os.PathLike)):
        from ..formats.text import read_net_param
        return read_net_param(caffe_net)
    if len(caffe_net.layers) and not len(caffe_net.layer):
        from ..formats.upgrade import upgrade_net
        return upgrade_net(caffe_net)
    return caffe_net


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None, display_lrm=False):
    """A ``pydot.Dot`` digraph of ``caffe_net`` (a NetParameter, or a prototxt
    path). ``rankdir``: 'LR', 'RL', 'TB' or 'BT'. ``phase``: caffe.TRAIN or
    caffe.TEST to keep only that phase's layers, None for all layers."""
    pydot = _pydot()
    net = _as_net_param(caffe_net)
    graph = pydot.Dot(_quote(net.name or "Net"), graph_type="digraph", rankdir=rankdir)
    nodes = {}
    edges = []

    def blob_node(name):
        key = name + "_blob"
        if key not in nodes:
            nodes[key] = pydot.Node(_quote(key), label=_quote(name), **BLOB_STYLE)
        return key

    for layer in net.layer:
        if not _included(layer, phase):
            continue
        key = "%s_%s" % (layer.name, layer.type)
        in_place = (len(layer.bottom) == 1 and len(layer.top) == 1
                    and layer.bottom[0] == layer.top[0])
        style = dict(NEURON_LAYER_STYLE if in_place else LAYER_STYLE_DEFAULT)
        if not in_place:
            style["fillcolor"] = choose_color_by_layertype(layer.type)
        label = get_layer_label(layer, rankdir, display_lrm=display_lrm)
        nodes[key] = pydot.Node(_quote(key), label=_quote(label, record=True), **style)
        for bottom in layer.bottom:
            edges.append((blob_node(bottom), key, '""'))
        top_label = get_edge_label(layer) if label_edges else '""'
        for top in layer.top:
            edges.append((key, blob_node(top), top_label))
    for node in nodes.values():
        graph.add_node(node)
    for src, dst, label in edges:
        if label != '""':
            label = _quote(label)
        graph.add_edge(pydot.Edge(nodes[src], nodes[dst], label=label))
    return graph


class GraphvizNotFoundError(FileNotFoundError, RuntimeError):
    """Graphviz's ``dot`` is not on PATH (pydot, under pycaffe: FileNotFoundError)."""


class DrawFormatError(ValueError, AssertionError):
    """``dot`` failed on the format (pydot, under pycaffe: AssertionError)."""


def _check_dot():
    if shutil.which("dot") is None:
        raise GraphvizNotFoundError(
            errno.ENOENT, "Graphviz's `dot` program was not found on PATH; drawing a net "
            "needs it: install graphviz (apt-get install graphviz, brew install graphviz "
            "or conda install graphviz)", "dot")


def draw_net(caffe_net, rankdir, ext="png", phase=None, display_lrm=False):
    """The drawing of ``caffe_net`` as bytes in format ``ext`` (png, svg, pdf...;
    'raw' gives the DOT source)."""
    graph = get_pydot_graph(caffe_net, rankdir, phase=phase, display_lrm=display_lrm)
    if ext == "raw":
        return graph.to_string().encode("utf-8")
    _check_dot()
    try:
        return graph.create(format=ext)
    except AssertionError as exc:  # pydot's report of a failed `dot` run
        raise DrawFormatError("Graphviz could not draw format %r (the file extension "
                              "picks it: png, svg, pdf, raw...): %s" % (ext, exc)) from None


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None, display_lrm=False):
    """Draw ``caffe_net`` to ``filename``, in the format its extension names
    ('.raw' writes the DOT source, to feed Graphviz by hand)."""
    filename = os.fspath(filename)
    ext = filename[filename.rfind(".") + 1:]
    data = draw_net(caffe_net, rankdir, ext, phase, display_lrm)
    with open(filename, "wb") as fid:
        fid.write(data)
