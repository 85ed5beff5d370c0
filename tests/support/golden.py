"""Run a golden case (tests/fixtures/golden/FORMAT.md) through our Net and compare.

Procedure, as the cases were made with official Caffe:
  set_random_seed(caffe_seed); net = Net(prototxt, phase); params and inputs
  from the file (each layer must have as many param blobs as Caffe recorded);
  forward; compare every recorded top; set the recorded top diffs of the outputs;
  backward; compare bottom diffs and param diffs.
"""
import os

import numpy as np

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats.text import parse_net_text
from . import paths

GOLDEN = os.path.join(paths.GOLDEN)
RTOL = 1e-4


def case_path(group, name):
    return os.path.join(GOLDEN, group, name + ".npz")


def list_cases(group):
    folder = os.path.join(GOLDEN, group)
    return sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".npz"))


def missing_types(prototxt):
    """Layer types the case needs that are not registered yet."""
    param = parse_net_text(prototxt)
    known = set(caffe.layer_type_list())
    return sorted({l.type for l in param.layer} - known)


def assert_close(ours, ref, what, rtol=RTOL):
    ours = backend.to_numpy(ours).astype(np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, "%s: shape %s, Caffe %s" % (what, ours.shape, ref.shape)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-6)
    err = float(np.abs(ours - ref).max()) if ref.size else 0.0
    assert err <= rtol * scale, "%s: max abs error %.3g vs scale %.3g (rel %.3g > %g)" % (
        what, err, scale, err / scale, rtol)


def _random_tops(net_param):
    """Tops drawn at random every forward (DummyData with a non-constant filler)."""
    tops = set()
    for layer in net_param.layer:
        if layer.type != "DummyData":
            continue
        fillers = list(layer.dummy_data_param.data_filler)
        for j, top in enumerate(layer.top):
            f = fillers[j] if len(fillers) > 1 else (fillers[0] if fillers else None)
            if f is not None and f.type != "constant":
                tops.add(top)
    return tops


def _on(net, array):
    """``array`` on the device of the net's blobs."""
    return backend.to_device(array, net._blobs[0].xp) if net._blobs else array


def run_case(path, skip_keys=()):
    """Run one case; raise AssertionError on the first mismatch."""
    d = np.load(path)
    prototxt = str(d["prototxt"])
    phase = caffe.TRAIN if str(d["phase"]) == "TRAIN" else caffe.TEST
    if "caffe_seed" in d.files:   # the HWGQ cases set every array explicitly
        caffe.set_random_seed(int(d["caffe_seed"]))
    net = caffe.Net(parse_net_text(prototxt), phase)
    keys = [k for k in d.files if k not in skip_keys]
    n_params = {}
    for k in keys:
        if k.startswith("param__"):
            _, layer, i = k.split("__")
            n_params[layer] = n_params.get(layer, 0) + 1
    for layer, n in n_params.items():   # e.g. no bias blob with bias_term: false
        ours = len(net.params[layer]) if layer in net.params else 0
        assert ours == n, "%s: %d param blobs, Caffe %d" % (layer, ours, n)
    for k in keys:
        if k.startswith("param__"):
            _, layer, i = k.split("__")
            net.params[layer][int(i)].data[...] = d[k]      # pycaffe's views: NumPy
    for k in keys:
        if k.startswith("in__"):
            name = k[4:]
            if net.has_blob(name):
                blob = net.blob_by_name(name)
                blob.reshape(d[k].shape)
                blob.data[...] = _on(net, d[k])
            else:   # a Parameter layer of that name holds the input
                net.params[name][0].data[...] = d[k]
    net.forward()
    random_tops = _random_tops(parse_net_text(prototxt))
    for k in keys:
        if k.startswith("out__"):
            name = k[5:]
            ours = net.blob_by_name(name).data
            if name in random_tops:
                assert ours.shape == d[k].shape, "%s: shape %s vs %s" % (k, ours.shape, d[k].shape)
                continue
            assert_close(ours, d[k], k)
        elif k.startswith("paramafter__"):
            _, layer, i = k.split("__")
            assert_close(net.params[layer][int(i)].data, d[k], k)
    if not any(k.startswith("topdiff__") for k in keys):
        return net
    for k in keys:
        if k.startswith("topdiff__"):
            net.blob_by_name(k[9:]).diff[...] = _on(net, d[k])
    net.backward()
    for k in keys:
        if k.startswith("diff__"):
            name = k[6:]
            if net.has_blob(name):
                assert_close(net.blob_by_name(name).diff, d[k], k)
            else:
                assert_close(net.params[name][0].diff, d[k], k)
        elif k.startswith("blobdiff__"):
            assert_close(net.blob_by_name(k[10:]).diff, d[k], k)
        elif k.startswith("paramdiff__"):
            _, layer, i = k.split("__")
            assert_close(net.params[layer][int(i)].diff, d[k], k)
    return net
