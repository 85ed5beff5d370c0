"""``lowbit-caffe deploy``: from a trained model to its deploy forms.

1. ``deploy_form``: the TEST-phase net with data layers replaced by one Input
   layer (shape from ``input_shape``, needed only when the model reads a
   database), Accuracy and loss layers removed (a SoftmaxWithLoss becomes a
   Softmax "prob", as in Caffe's deploy files), and layers left without
   their bottoms dropped.
2. The training-net layers are built with the trained weights (TEST phase),
   and ``bw.to_bw`` writes the plain pair <name>_bw.prototxt / .caffemodel.
3. ``fold.fold_batchnorm`` writes <name>_folded.prototxt / .caffemodel.
4. ``pack`` writes <name>.lbpack (from the folded net when folding) and logs
   the size report, also written to <name>.size.txt.
"""
import logging
import os

from ..formats import text
from ..formats.caffemodel import write_net_binary
from ..core.net import Net, TEST
from ..core.net_graph import filter_net
from ..proto import caffe_pb2
from . import bw, fold, pack

log = logging.getLogger("pycaffe_lowbit")

DATA_TYPES = ("Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "DummyData",
              "Python", "VideoData")


def deploy_form(param, input_shape=None, source="<model>"):
    """A copy of ``param`` in deploy form (see the module docstring)."""
    net = caffe_pb2.NetParameter()
    net.CopyFrom(param)
    net.state.phase = TEST
    net = filter_net(net)
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layer[:]
    have = set()
    added_input = False
    for lp in net.layer:
        if lp.type in DATA_TYPES and lp.type != "Python" or (
                lp.type == "Python" and not len(lp.bottom)):
            if added_input:
                continue
            if not input_shape:
                raise ValueError("%s: layer '%s' (%s) reads its data from a source; give the "
                                 "input shape (--input_shape N,C,H,W) to deploy it"
                                 % (source, lp.name, lp.type))
            inp = out.layer.add(name="input", type="Input", top=[lp.top[0]])
            inp.input_param.shape.add().dim.extend(int(d) for d in input_shape)
            have.add(lp.top[0])
            added_input = True
            continue
        if lp.type == "Accuracy":
            continue
        if lp.type.endswith("Loss"):
            if lp.type == "SoftmaxWithLoss" and lp.bottom[0] in have:
                out.layer.add(name="prob", type="Softmax", bottom=[lp.bottom[0]], top=["prob"])
                have.add("prob")
            continue
        if any(b not in have for b in lp.bottom):
            continue
        out.layer.add().CopyFrom(lp)
        have.update(lp.top)
    out.ClearField("state")
    _drop_unread_inputs(out)
    return out


def _drop_unread_inputs(net):
    """Input tops nothing reads any more (labels) go, with their shapes."""
    read = {b for lp in net.layer for b in lp.bottom}
    for i in range(len(net.layer) - 1, -1, -1):
        lp = net.layer[i]
        if lp.type != "Input":
            continue
        shapes = list(lp.input_param.shape)
        keep = [j for j, t in enumerate(lp.top) if t in read]
        if not keep:
            del net.layer[i]
            continue
        tops = [lp.top[j] for j in keep]
        del lp.top[:]
        lp.top.extend(tops)
        if len(shapes) > 1:
            del lp.input_param.shape[:]
            for j in keep:
                lp.input_param.shape.add().CopyFrom(shapes[j])


def _write_pair(param, out_dir, stem):
    """<stem>.prototxt (no blobs) and <stem>.caffemodel (with blobs)."""
    bare = caffe_pb2.NetParameter()
    bare.CopyFrom(param)
    for lp in bare.layer:
        del lp.blobs[:]
        lp.ClearField("phase")
    text.write_text(bare, os.path.join(out_dir, stem + ".prototxt"))
    write_net_binary(param, os.path.join(out_dir, stem + ".caffemodel"))


def build_deploy(model, weights, input_shape=None, do_fold=True):
    """(training Net, bw NetParameter, folded NetParameter or None, PackedModel,
    quantized layer names) for prototxt path ``model`` and ``weights``."""
    param = deploy_form(text.read_net_param(model), input_shape, model)
    net = Net(param, TEST, weights=weights)
    bw_param, quantized = bw.to_bw(net)
    folded = fold.fold_batchnorm(bw_param)[0] if do_fold else None
    packed = pack.pack_net(folded if do_fold else bw_param, names=quantized)
    return net, bw_param, folded, packed, quantized


def write_deploy(model, weights, out_dir, name, fold=True, input_shape=None):
    net, bw_param, folded, packed, quantized = build_deploy(model, weights, input_shape, fold)
    _write_pair(bw_param, out_dir, name + "_bw")
    if folded is not None:
        _write_pair(folded, out_dir, name + "_folded")
    pack.save_packed(packed, os.path.join(out_dir, name + ".lbpack"))
    report = pack.format_size_report(packed)
    with open(os.path.join(out_dir, name + ".size.txt"), "w") as f:
        f.write(report + "\n")
    log.info("Quantized layers: %s", ", ".join(quantized) or "none")
    for line in report.splitlines():
        log.info("%s", line)
    log.info("Wrote %s_bw.*, %s%s.lbpack to %s", name,
             (name + "_folded.*, ") if folded is not None else "", name, out_dir)
    return bw_param, folded, packed
