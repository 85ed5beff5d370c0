"""pycaffe's Net API as scripts use it, in CPU mode and in GPU mode on the CuPy
double (``pycaffe_mode``, tests/pycaffe/conftest.py): together with
test_modes_solver.py, test_modes_python_layer.py and test_modes_spec_io.py the
CI stand-in for BVLC's python/caffe/test suite (test_upstream_pycaffe.py runs
that suite only where its files are available).

The net under test (``CONVNET``): inputs ``data`` (4, 2, 5, 5) and ``label``
(4,); conv1 = ReLU(3x3 convolution, pad 1, 3 outputs) in place; scores =
InnerProduct(conv1 flattened to 75) with 4 outputs; loss = mean over the batch
of -log softmax(scores)[label]. ``reference`` computes the same in float64
NumPy from the net's own params."""
import numpy as np
import pytest

import pycaffe_lowbit as caffe

CONVNET = """
name: "modes_convnet"
force_backward: true
layer { name: "feed" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 2 dim: 5 dim: 5 } shape { dim: 4 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1
          weight_filler { type: "gaussian" std: 0.4 }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "scores"
        inner_product_param { num_output: 4 weight_filler { type: "xavier" }
          bias_filler { type: "constant" value: -0.2 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "scores" bottom: "label" top: "loss" }
"""


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def convnet(tmp_path, phase=caffe.TRAIN, **kwargs):
    return caffe.Net(write(tmp_path, CONVNET), phase, **kwargs)


def batch(seed=0):
    rng = np.random.RandomState(seed)
    return (rng.randn(4, 2, 5, 5).astype(np.float32),
            rng.randint(0, 4, size=4).astype(np.float32))


def conv3x3(x, w, b):
    """Cross-correlation with zero padding 1: (N, C, H, W) * (K, C, 3, 3) -> (N, K, H, W)."""
    n, c, h, wd = x.shape
    padded = np.zeros((n, c, h + 2, wd + 2))
    padded[:, :, 1:-1, 1:-1] = x
    out = np.zeros((n, w.shape[0], h, wd))
    for dy in range(3):
        for dx in range(3):
            window = padded[:, :, dy:dy + h, dx:dx + wd]
            out += np.einsum("nchw,kc->nkhw", window, w[:, :, dy, dx])
    return out + b[None, :, None, None]


def reference(net, x, label):
    """(conv1 after ReLU, scores, loss, d loss / d scores) in float64."""
    wc, bc = (p.data.astype(np.float64) for p in net.params["conv1"])
    wf, bf = (p.data.astype(np.float64) for p in net.params["fc"])
    conv = np.maximum(conv3x3(x.astype(np.float64), wc, bc), 0)
    scores = conv.reshape(len(x), -1) @ wf.T + bf
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    rows = np.arange(len(x)), label.astype(int)
    loss = -np.log(prob[rows]).mean()
    dscores = prob.copy()
    dscores[rows] -= 1
    return conv, scores, loss, dscores / len(x)


def params_of(net):
    return {name: [p.data.copy() for p in ps] for name, ps in net.params.items()}


def assert_same_params(net, other):
    """Every parameter of ``other`` equals ``net``'s, exactly."""
    for name, ps in params_of(net).items():
        for mine, theirs in zip(ps, other.params[name]):
            np.testing.assert_array_equal(theirs.data, mine)


# -- structure ----------------------------------------------------------------
def test_blobs_and_params_have_the_prototxt_shapes(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    assert list(net.blobs) == ["data", "label", "conv1", "scores", "loss"]
    shapes = {name: blob.data.shape for name, blob in net.blobs.items()}
    assert shapes == {"data": (4, 2, 5, 5), "label": (4,), "conv1": (4, 3, 5, 5),
                      "scores": (4, 4), "loss": ()}
    assert list(net.params) == ["conv1", "fc"]
    assert [p.data.shape for p in net.params["conv1"]] == [(3, 2, 3, 3), (3,)]
    assert [p.data.shape for p in net.params["fc"]] == [(4, 75), (4,)]
    for blob in list(net.blobs.values()) + net.params["conv1"] + net.params["fc"]:
        assert type(blob.data) is np.ndarray and blob.data.dtype == np.float32
        assert type(blob.diff) is np.ndarray and blob.diff.dtype == np.float32
        assert blob.count == blob.data.size and tuple(blob.shape) == blob.data.shape
    # the fillers ran
    np.testing.assert_array_equal(net.params["conv1"][1].data, np.float32([0.1] * 3))
    np.testing.assert_array_equal(net.params["fc"][1].data, np.float32([-0.2] * 4))


def test_names_inputs_outputs_and_layer_listing(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    assert net.inputs == ["data", "label"] and net.outputs == ["loss"]
    assert list(net._layer_names) == ["feed", "conv1", "relu1", "fc", "loss"]
    assert [layer.type for layer in net.layers] == [
        "Input", "Convolution", "ReLU", "InnerProduct", "SoftmaxWithLoss"]
    assert dict(net.top_names) == {"feed": ["data", "label"], "conv1": ["conv1"],
                                   "relu1": ["conv1"], "fc": ["scores"], "loss": ["loss"]}
    assert dict(net.bottom_names) == {"feed": [], "conv1": ["data"], "relu1": ["conv1"],
                                      "fc": ["conv1"], "loss": ["scores", "label"]}
    assert list(net.top_names) == list(net._layer_names)
    layers = net.layer_dict
    assert list(layers) == list(net._layer_names)
    assert [layers[name].type for name in layers] == [layer.type for layer in net.layers]
    np.testing.assert_array_equal(layers["fc"].blobs[0].data, net.params["fc"][0].data)


def test_levels_and_stages_pick_the_layers(pycaffe_mode, tmp_path):
    text = """
    layer { name: "feed" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "always" type: "Power" bottom: "x" top: "always" }
    layer { name: "deploy_only" type: "Power" bottom: "x" top: "deploy_only"
            include { stage: "deploy" } }
    layer { name: "not_deploy" type: "Power" bottom: "x" top: "not_deploy"
            exclude { stage: "deploy" } }
    layer { name: "from_level_2" type: "Power" bottom: "x" top: "from_level_2"
            include { min_level: 2 } }
    """
    path = write(tmp_path, text)
    assert caffe.Net(path, caffe.TEST).outputs == ["always", "not_deploy"]
    assert caffe.Net(path, caffe.TEST, stages=["deploy"]).outputs == ["always", "deploy_only"]
    # outputs come in name order, as Caffe's std::set of the unconsumed tops
    assert caffe.Net(path, caffe.TEST, level=2).outputs == [
        "always", "from_level_2", "not_deploy"]


# -- forward ------------------------------------------------------------------
def test_forward_after_writing_the_input_views_matches_numpy(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    x, label = batch(0)
    net.blobs["data"].data[...] = x
    net.blobs["label"].data[...] = label
    out = net.forward()
    conv, scores, loss, _ = reference(net, x, label)
    assert list(out) == ["loss"] and type(out["loss"]) is np.ndarray
    assert float(out["loss"]) == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(net.blobs["conv1"].data, conv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.blobs["scores"].data, scores, rtol=1e-5, atol=1e-5)


def test_forward_with_keyword_inputs_and_extra_blobs(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    x, label = batch(1)
    out = net.forward(blobs=["scores", "conv1"], data=x, label=label)
    assert sorted(out) == ["conv1", "loss", "scores"]
    conv, scores, loss, _ = reference(net, x, label)
    np.testing.assert_allclose(out["scores"], scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["conv1"], conv, rtol=1e-5, atol=1e-5)
    assert float(out["loss"]) == pytest.approx(loss, rel=1e-5)
    np.testing.assert_array_equal(net.blobs["data"].data, x)     # the inputs were copied in
    with pytest.raises(ValueError):
        net.forward(data=x)                                       # every input or none


def test_forward_from_start_to_end_runs_only_those_layers(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    rng = np.random.RandomState(2)
    features = rng.rand(4, 3, 5, 5).astype(np.float32)
    net.blobs["conv1"].data[...] = features        # what conv1 would have made
    net.blobs["loss"].data[...] = 123.0
    out = net.forward(start="fc", end="fc")
    assert list(out) == ["scores"]
    w, b = (p.data for p in net.params["fc"])
    expected = features.reshape(4, -1) @ w.T + b
    np.testing.assert_allclose(out["scores"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.blobs["scores"].data, expected, rtol=1e-5, atol=1e-5)
    assert float(net.blobs["loss"].data) == 123.0     # the loss layer did not run
    with pytest.raises(ValueError):
        net.forward(start="no_such_layer")


# -- backward -----------------------------------------------------------------
def test_backward_returns_input_diffs_and_fills_param_diffs(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    x, label = batch(3)
    net.forward(data=x, label=label)
    grads = net.backward()
    assert sorted(grads) == ["data", "label"]
    assert type(grads["data"]) is np.ndarray and grads["data"].shape == x.shape
    np.testing.assert_array_equal(grads["data"], net.blobs["data"].diff)
    assert np.abs(grads["data"]).max() > 0
    conv, _, _, dscores = reference(net, x, label)
    np.testing.assert_allclose(net.params["fc"][0].diff, dscores.T @ conv.reshape(4, -1),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.params["fc"][1].diff, dscores.sum(axis=0),
                               rtol=1e-4, atol=1e-6)


def test_backward_with_an_output_diff_scales_the_gradients(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    x, label = batch(4)
    net.forward(data=x, label=label)
    once = net.backward()["data"].copy()
    weight_grad = net.params["conv1"][0].diff.copy()
    net.clear_param_diffs()
    thrice = net.backward(**{"loss": np.float32(3)}, diffs=["conv1"])
    assert sorted(thrice) == ["conv1", "data", "label"]
    np.testing.assert_allclose(thrice["data"], 3 * once, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(net.params["conv1"][0].diff, 3 * weight_grad,
                               rtol=1e-5, atol=1e-7)


def test_backward_from_start_to_end(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.forward(**dict(zip(["data", "label"], batch(5))))
    top_diff = np.random.RandomState(5).randn(4, 4).astype(np.float32)
    net.blobs["scores"].diff[...] = top_diff
    grads = net.backward(start="fc", end="fc")
    assert list(grads) == ["conv1"]
    expected = (top_diff @ net.params["fc"][0].data).reshape(4, 3, 5, 5)
    np.testing.assert_allclose(grads["conv1"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.blobs["conv1"].diff, expected, rtol=1e-5, atol=1e-6)


def test_clear_param_diffs_zeroes_every_param_diff(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.forward(**dict(zip(["data", "label"], batch(6))))
    net.backward()
    diff = net.params["conv1"][0].diff
    assert np.abs(diff).max() > 0
    net.clear_param_diffs()
    for ps in net.params.values():
        for p in ps:
            assert not p.diff.any()


def test_views_outlive_the_net(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.forward(**dict(zip(["data", "label"], batch(7))))
    kept = [p for ps in net.params.values() for p in ps] + list(net.blobs.values())
    del net
    total = sum(float(b.data.sum()) + float(b.diff.sum()) for b in kept)
    assert np.isfinite(total)


# -- weights --------------------------------------------------------------------
def test_save_then_load_gives_identical_params(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.params["fc"][0].data[...] *= 2           # an edit, so fillers alone cannot match
    weights = str(tmp_path / "w.caffemodel")
    net.save(weights)
    proto = write(tmp_path, CONVNET, "again.prototxt")
    for other in (caffe.Net(proto, weights, caffe.TEST),
                  caffe.Net(proto, caffe.TEST, weights=weights)):
        assert_same_params(net, other)
    fresh = convnet(tmp_path)
    fresh.copy_from(weights)
    assert_same_params(net, fresh)


def test_share_with_uses_the_other_nets_weights(pycaffe_mode, tmp_path):
    train = convnet(tmp_path)
    test = convnet(tmp_path, caffe.TEST)
    test.share_with(train)
    train.params["fc"][1].data[...] = [1, 2, 3, 4]
    x, label = batch(8)
    out = test.forward(blobs=["scores"], data=x, label=label)
    _, scores, _, _ = reference(train, x, label)
    np.testing.assert_allclose(out["scores"], scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(test.params["fc"][1].data, [1, 2, 3, 4])


# -- reshaping and memory data -------------------------------------------------
def test_reshaping_an_input_then_forward(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.blobs["data"].reshape(2, 2, 5, 5)
    net.blobs["label"].reshape(2)
    net.reshape()
    assert net.blobs["conv1"].data.shape == (2, 3, 5, 5)
    assert net.blobs["scores"].data.shape == (2, 4)
    x, label = batch(9)
    net.blobs["data"].data[...] = x[:2]
    net.blobs["label"].data[...] = label[:2]
    loss = float(net.forward()["loss"])
    assert loss == pytest.approx(reference(net, x[:2], label[:2])[2], rel=1e-5)


def test_set_input_arrays_feeds_a_memory_data_layer(pycaffe_mode, tmp_path):
    text = """
    layer { name: "memory" type: "MemoryData" top: "data" top: "label"
            memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }
    layer { name: "double_it" type: "Power" bottom: "data" top: "doubled"
            power_param { scale: 2 } }
    layer { name: "quiet" type: "Silence" bottom: "label" }
    """
    net = caffe.Net(write(tmp_path, text), caffe.TEST)
    data = np.arange(24, dtype=np.float32).reshape(4, 1, 2, 3)
    labels = np.array([5, 6, 7, 8], np.float32)
    net.set_input_arrays(data, labels)
    first = net.forward()
    np.testing.assert_array_equal(first["doubled"], 2 * data[:2])
    np.testing.assert_array_equal(net.blobs["label"].data.ravel(), [5, 6])
    second = net.forward()
    np.testing.assert_array_equal(second["doubled"], 2 * data[2:])
    np.testing.assert_array_equal(net.blobs["label"].data.ravel(), [7, 8])
    with pytest.raises(RuntimeError):
        net.set_input_arrays(data[:3], labels[:3])       # not a multiple of the batch


def test_hdf5_weights_round_trip(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    net.params["conv1"][0].data[...] += 1
    path = str(tmp_path / "w.h5")
    net.save_hdf5(path)
    other = convnet(tmp_path)
    other.load_hdf5(path)
    assert_same_params(net, other)


# -- what scripts do with the views --------------------------------------------
def test_an_edit_through_layer_dict_takes_effect(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    fc = net.layer_dict["fc"]
    assert type(fc.blobs[0].data) is np.ndarray
    fc.blobs[0].data[...] = 0                      # net surgery on the layer's blobs
    fc.blobs[1].data[...] = np.float32([1, 2, 3, 4])
    out = net.forward(blobs=["scores"], **dict(zip(["data", "label"], batch(10))))
    np.testing.assert_array_equal(out["scores"], np.tile(np.float32([1, 2, 3, 4]), (4, 1)))
    np.testing.assert_array_equal(net.params["fc"][0].data, 0)


def test_a_held_view_shows_the_next_forward_once_looked_up_again(pycaffe_mode, tmp_path):
    net = convnet(tmp_path)
    held = net.blobs["scores"].data
    inputs = dict(zip(["data", "label"], batch(11)))
    first = net.forward(blobs=["scores"], **inputs)["scores"].copy()
    second = net.forward(blobs=["scores"], **dict(zip(["data", "label"], batch(12))))["scores"]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(net.blobs["scores"].data, second)
    np.testing.assert_array_equal(held, second)    # the same host memory, refreshed


def test_forward_all_splits_into_batches(pycaffe_mode, tmp_path):
    net = convnet(tmp_path, caffe.TEST)
    rng = np.random.RandomState(13)
    x = rng.randn(6, 2, 5, 5).astype(np.float32)   # one and a half batches of 4
    label = rng.randint(0, 4, size=6).astype(np.float32)
    out = net.forward_all(blobs=["scores"], data=x, label=label)
    assert out["scores"].shape == (6, 4) and type(out["scores"]) is np.ndarray
    _, scores, _, _ = reference(net, x, label)
    np.testing.assert_allclose(out["scores"], scores, rtol=1e-5, atol=1e-5)
