"""Net construction and passes, with Caffe's semantics."""
import textwrap

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.formats.text import parse_net_text
from pycaffe_lowbit.layers.registry import UnknownLayerTypeError
from pycaffe_lowbit.core.net_graph import NetDefinitionError, filter_net, insert_splits

from support.helpers import MLP_NET

MLP = MLP_NET + """layer { name: "acc" type: "Accuracy" bottom: "ip2" bottom: "label" top: "acc"
        include { phase: TEST } }
"""


def make_net(text, phase=caffe.TRAIN, **kwargs):
    return caffe.Net(parse_net_text(textwrap.dedent(text)), phase, **kwargs)


def feed(net, seed=0):
    rng = np.random.default_rng(seed)
    net.blobs["data"].data[...] = rng.standard_normal(net.blobs["data"].shape)
    net.blobs["label"].data[...] = rng.integers(0, 3, net.blobs["label"].shape)


def test_phase_filtering_and_outputs():
    train = make_net(MLP, caffe.TRAIN)
    test = make_net(MLP, caffe.TEST)
    assert "acc" not in train.layer_dict and "acc" in test.layer_dict
    assert train.outputs == ["loss"]
    assert test.outputs == ["acc", "loss"]       # sorted by name, as Caffe's std::set
    assert train.inputs == ["data", "label"]


def test_split_inserted_for_shared_blob():
    net = make_net(MLP, caffe.TEST)
    names = net._layer_names
    assert "ip2_ip2_0_split" in names and "label_data_1_split" in names
    assert net.bottom_names["loss"] == ["ip2_ip2_0_split_0", "label_data_1_split_0"]
    assert net.bottom_names["acc"] == ["ip2_ip2_0_split_1", "label_data_1_split_1"]


def test_forward_backward_matches_numeric_gradient():
    caffe.set_random_seed(3)
    net = make_net(MLP, caffe.TRAIN, dtype=np.float64)
    feed(net)
    loss = net.forward()["loss"]
    net.clear_param_diffs()
    net.backward()
    w = net.params["ip1"][0]
    analytic = w.diff.copy()
    eps = 1e-6
    for idx in [(0, 0), (2, 3), (4, 5)]:
        w.data[idx] += eps
        plus = float(net.forward()["loss"])
        w.data[idx] -= 2 * eps
        minus = float(net.forward()["loss"])
        w.data[idx] += eps
        assert analytic[idx] == pytest.approx((plus - minus) / (2 * eps), rel=1e-5, abs=1e-8)
    assert float(loss) > 0


def test_param_diffs_accumulate_until_cleared():
    net = make_net(MLP)
    feed(net)
    net.forward()
    net.clear_param_diffs()
    net.backward()
    once = net.params["ip2"][0].diff.copy()
    net.backward()
    np.testing.assert_allclose(net.params["ip2"][0].diff, 2 * once, rtol=1e-6)
    net.clear_param_diffs()
    assert not net.params["ip2"][0].diff.any()


def test_loss_weight_scales_loss_and_gradient():
    net1 = make_net(MLP)
    net2 = make_net(MLP.replace('top: "loss" }', 'top: "loss" loss_weight: 2.5 }'))
    net2.share_with(net1)
    for net in (net1, net2):
        feed(net)
        net.clear_param_diffs()
        net.forward_backward()
    assert net2.blob_loss_weights["loss"] == 2.5
    l1 = net1.forward_prefilled()
    l2 = net2.forward_prefilled()
    assert l2 == pytest.approx(2.5 * l1, rel=1e-6)


def test_backward_inference_and_force_backward():
    net = make_net(MLP)
    assert not net.layer_need_backward(0)                      # Input
    assert net.layer_need_backward(net._layer_names.index("ip1"))
    forced = make_net("force_backward: true\n" + MLP)
    ip1 = forced._layer_names.index("ip1")
    assert forced.bottom_need_backward(ip1) == [True]
    loss = forced._layer_names.index("loss")
    assert forced.bottom_need_backward(loss) == [True, False]  # never into labels
    feed(forced)
    forced.forward()
    forced.backward()
    assert forced.blobs["data"].diff.any()


def test_lr_mult_zero_freezes_and_skips_backward():
    text = MLP.replace('bottom: "data" top: "ip1"',
                       'bottom: "data" top: "ip1" param { lr_mult: 0 } param { lr_mult: 0 }')
    net = make_net(text)
    ip1 = net._layer_names.index("ip1")
    assert not net.layer_need_backward(ip1)
    assert net.params_lr[0] == 0


def test_propagate_down_false_cuts_backward_below():
    """No gradient crosses a bottom with propagate_down: false, so the layers
    below it need no backward at all (Caffe's skip-propagation pass)."""
    text = MLP.replace('bottom: "ip1" top: "ip2"',
                       'bottom: "ip1" top: "ip2" propagate_down: false')
    net = make_net(text)
    names = net._layer_names
    assert net.bottom_need_backward(names.index("ip2")) == [False]
    assert net.layer_need_backward(names.index("ip2"))         # its params still learn
    assert not net.layer_need_backward(names.index("relu1"))
    assert not net.layer_need_backward(names.index("ip1"))
    feed(net)
    net.forward()
    net.clear_param_diffs()
    net.backward()
    assert not net.params["ip1"][0].diff.any()
    assert net.params["ip2"][0].diff.any()


def test_force_backward_overrides_propagate_down():
    text = "force_backward: true\n" + MLP.replace(
        'bottom: "ip1" top: "ip2"', 'bottom: "ip1" top: "ip2" propagate_down: false')
    net = make_net(text)
    assert net.bottom_need_backward(net._layer_names.index("ip2")) == [True]


def test_param_sharing_by_name():
    text = """
    layer { name: "data" type: "Input" top: "a" top: "b"
            input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ipa" type: "InnerProduct" bottom: "a" top: "ya"
            param { name: "w" } param { name: "bias" }
            inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
    layer { name: "ipb" type: "InnerProduct" bottom: "b" top: "yb"
            param { name: "w" } param { name: "bias" }
            inner_product_param { num_output: 4 } }
    """
    net = make_net(text)
    assert net.params["ipa"][0] is net.params["ipb"][0]
    assert len(net.learnable_params) == 2
    bad = text.replace("num_output: 4 } }", "num_output: 5 } }")
    with pytest.raises(NetDefinitionError, match="cannot share param 'w'.*'ipa'.*'ipb'"):
        make_net(bad)


def test_forward_start_end_and_returned_blobs():
    net = make_net(MLP, caffe.TEST)
    feed(net)
    full = net.forward()
    part = net.forward(start="ip2", end="ip2")
    assert set(part) == {"ip2"}
    out = net.forward(blobs=["ip1"])
    assert "ip1" in out and set(full) <= set(out)


def test_forward_with_inputs_and_reshape():
    net = make_net(MLP, caffe.TEST)
    x = np.ones((7, 6), np.float32)
    out = net.forward(data=x, label=np.zeros(7, np.float32))
    assert net.blobs["ip2"].shape == (7, 3)
    assert out["acc"].shape == ()
    with pytest.raises(ValueError, match="do not match net inputs"):
        net.forward(data=x)


def test_forward_all_batches():
    net = make_net(MLP, caffe.TEST)
    x = np.random.default_rng(0).standard_normal((10, 6)).astype(np.float32)
    out = net.forward_all(blobs=["ip2"], data=x, label=np.zeros(10, np.float32))
    assert out["ip2"].shape == (10, 3)
    single = net.forward(data=x[4:8], label=np.zeros(4, np.float32), blobs=["ip2"])
    np.testing.assert_allclose(out["ip2"][4:8], single["ip2"], rtol=1e-6)


def test_pycaffe_introspection():
    net = make_net(MLP, caffe.TEST)
    assert list(net.params) == ["ip1", "ip2"]
    assert net.layers[net._layer_names.index("ip1")].type == "InnerProduct"
    assert net._blob_names[net._top_ids(net._layer_names.index("ip1"))[0]] == "ip1"
    assert net.top_names["relu1"] == ["ip1"] and net.bottom_names["relu1"] == ["ip1"]
    assert net.blob_loss_weights["loss"] == 1.0 and net.blob_loss_weights["ip1"] == 0.0
    assert net.blobs["ip1"].count == 4 * 5
    assert "ReLU" in caffe.layer_type_list()


def test_errors_name_layer_and_blob():
    with pytest.raises(NetDefinitionError, match="unknown bottom blob 'nope'.*layer 'ip'"):
        make_net('layer { name: "ip" type: "InnerProduct" bottom: "nope" top: "y" '
                 'inner_product_param { num_output: 2 } }')
    with pytest.raises(UnknownLayerTypeError, match="layer 'c'.*'Convolutoin'.*Convolution"):
        make_net('layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 1 } } }'
                 'layer { name: "c" type: "Convolutoin" bottom: "x" top: "y" }')
    with pytest.raises(NetDefinitionError, match="'x'.*multiple sources"):
        make_net('layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 1 } } }'
                 'layer { name: "e" type: "Input" top: "x" input_param { shape { dim: 1 } } }')
    with pytest.raises(NetDefinitionError, match="both include and exclude"):
        make_net('layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 1 } } '
                 'include { phase: TRAIN } exclude { phase: TEST } }')


def test_level_and_stage_rules():
    text = """
    layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 1 } } }
    layer { name: "lo" type: "ReLU" bottom: "x" top: "a" include { max_level: 1 } }
    layer { name: "hi" type: "ReLU" bottom: "x" top: "b" include { min_level: 2 } }
    layer { name: "st" type: "ReLU" bottom: "x" top: "c" include { stage: "deploy" } }
    layer { name: "ns" type: "ReLU" bottom: "x" top: "e" exclude { stage: "deploy" } }
    """
    net = make_net(text, level=2, stages=["deploy"])
    assert net._layer_names[-2:] == ["hi", "st"] or set(net._layer_names) >= {"hi", "st"}
    assert "lo" not in net._layer_names and "ns" not in net._layer_names
    plain = make_net(text)
    assert {"lo", "ns"} <= set(plain._layer_names) and "st" not in plain._layer_names


def test_save_and_copy_from_roundtrip(tmp_path):
    net = make_net(MLP)
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    other = make_net(MLP.replace('"gaussian" std: 0.5', '"constant" value: 0'))
    other.copy_from(path)
    for name in net.params:
        for a, b in zip(net.params[name], other.params[name]):
            np.testing.assert_array_equal(a.data, b.data)
    h5 = str(tmp_path / "w.caffemodel.h5")
    net.save_hdf5(h5)
    third = make_net(MLP.replace('"gaussian" std: 0.5', '"constant" value: 0'))
    third.load_hdf5(h5)
    np.testing.assert_array_equal(third.params["ip1"][0].data, net.params["ip1"][0].data)
    fourth = caffe.Net(parse_net_text(MLP), h5, caffe.TEST)
    np.testing.assert_array_equal(fourth.params["ip2"][0].data, net.params["ip2"][0].data)


def test_copy_from_shape_mismatch_names_layer_and_shapes(tmp_path):
    net = make_net(MLP)
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    wider = make_net(MLP.replace("num_output: 5", "num_output: 6"))
    with pytest.raises(ValueError, match=r"param 0 .*'ip1'.*\(5, 6\).*\(6, 6\)"):
        wider.copy_from(path)


def test_copy_from_skips_absent_layers(tmp_path):
    net = make_net(MLP)
    path = str(tmp_path / "w.caffemodel")
    net.save(path)
    renamed = make_net(MLP.replace('name: "ip2"', 'name: "ip2_new"'))
    before = renamed.params["ip2_new"][0].data.copy()
    renamed.copy_from(path)
    np.testing.assert_array_equal(renamed.params["ip2_new"][0].data, before)
    np.testing.assert_array_equal(renamed.params["ip1"][0].data, net.params["ip1"][0].data)


def test_graph_transforms_are_pure():
    param = parse_net_text(MLP)
    param.state.phase = caffe.TEST
    filtered = filter_net(param)
    split = insert_splits(filtered)
    assert len(param.layer) == 6 and len(filtered.layer) == 6
    assert len(split.layer) == 8


def test_hdf5_roundtrip_with_shared_params(tmp_path):
    """Only the owner of a shared param is written, as Caffe's ToHDF5 does."""
    text = """
    layer { name: "data" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ipa" type: "InnerProduct" bottom: "a" top: "ya" param { name: "w" }
            inner_product_param { num_output: 4 weight_filler { type: "gaussian" } } }
    layer { name: "ipb" type: "InnerProduct" bottom: "b" top: "yb" param { name: "w" }
            inner_product_param { num_output: 4 bias_filler { type: "gaussian" } } }
    """
    net = make_net(text)
    path = str(tmp_path / "shared.h5")
    net.save_hdf5(path)
    other = make_net(text.replace("gaussian", "constant"))
    other.load_hdf5(path)
    for layer in ("ipa", "ipb"):
        for a, b in zip(net.params[layer], other.params[layer]):
            np.testing.assert_array_equal(a.data, b.data)


def test_runtime_failure_names_layer_and_blobs():
    from pycaffe_lowbit.core.net import LayerRuntimeError
    net = make_net(MLP, caffe.TEST)
    net.blobs["data"].reshape(4, 7)          # ip1 was set up for 6 inputs
    with pytest.raises(ValueError, match=r"layer 'ip1' \(type InnerProduct\).*7 inputs.*expected 6"):
        net.forward()

    class Broken:                            # any failure inside a layer is named
        type = "Broken"
        loss_weights = []

        def reshape(self, bottom, top):
            pass

        def forward(self, bottom, top):
            raise ZeroDivisionError("boom")
    net.blobs["data"].reshape(4, 6)
    net.layers[net._layer_names.index("relu1")] = Broken()
    with pytest.raises(LayerRuntimeError, match=r"layer 'relu1' \(type Broken\) failed in "
                                                r"forward with bottoms \['ip1' \(4, 5\)\].*boom"):
        net.forward()


def test_forward_backward_all_returns_input_diffs():
    net = make_net("force_backward: true\n" + MLP, caffe.TRAIN)
    x = np.random.default_rng(1).standard_normal((8, 6)).astype(np.float32)
    outs, diffs = net.forward_backward_all(data=x, label=np.zeros(8, np.float32))
    assert outs["loss"].shape == (2,)                 # one loss per batch of 4
    assert diffs["data"].shape == (8, 6) and np.abs(diffs["data"]).sum() > 0


def test_permissive_sharing_allows_same_count_other_shape():
    """share_mode PERMISSIVE needs equal counts only; the arrays are views."""
    text = """
    layer { name: "d" type: "Input" top: "a" top: "b"
            input_param { shape { dim: 2 dim: 6 } shape { dim: 2 dim: 4 } } }
    layer { name: "pa" type: "InnerProduct" bottom: "a" top: "ya"
            param { name: "w" share_mode: PERMISSIVE } inner_product_param {
            num_output: 4 bias_term: false weight_filler { type: "gaussian" } } }
    layer { name: "pb" type: "InnerProduct" bottom: "b" top: "yb"
            param { name: "w" share_mode: PERMISSIVE } inner_product_param {
            num_output: 6 bias_term: false } }
    """
    net = make_net(text)
    wa, wb = net.params["pa"][0], net.params["pb"][0]
    assert wa.shape == (4, 6) and wb.shape == (6, 4)
    np.testing.assert_array_equal(wb.data.ravel(), wa.data.ravel())
    wa.data[0, 0] = 42
    assert wb.data[0, 0] == 42
    with pytest.raises(NetDefinitionError, match="shape mismatch"):
        make_net(text.replace(" share_mode: PERMISSIVE", ""))


def test_loss_weight_survives_a_reshape_of_a_weighted_top():
    """A non-loss layer's top with loss_weight keeps its weight when the batch
    size (and so the top's count) changes."""
    text = """
    layer { name: "d" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" loss_weight: 3
            inner_product_param { num_output: 2 weight_filler { type: "constant" value: 1 } } }
    """
    net = make_net(text)
    out = net.forward(x=np.ones((5, 3), np.float32))
    assert net.blobs["y"].shape == (5, 2)
    assert net.forward_prefilled() == pytest.approx(3 * 5 * 2 * 3)   # 3 * sum(y), y = 3
    net.backward()
    np.testing.assert_allclose(net.params["ip"][0].diff, 3 * 5 * np.ones((2, 3)))
    assert out["y"].shape == (5, 2)


def test_debug_info_logs_caffe_lines():
    from support.helpers import captured_log
    net = make_net("debug_info: true\n" + MLP)
    feed(net)
    with captured_log() as caplog:
        net.forward()
        net.backward()
    text = caplog.text
    assert "[Forward] Layer ip1, top blob ip1 data:" in text
    assert "[Forward] Layer ip1, param blob 0 data:" in text
    assert "[Backward] Layer ip2, bottom blob ip1 diff:" in text
    assert "[Backward] Layer ip1, param blob 1 diff:" in text


def test_recurrent_debug_info_logs_each_time_step():
    from support.helpers import captured_log
    text = """
    layer { name: "d" type: "Input" top: "x" top: "cont"
            input_param { shape { dim: 3 dim: 2 dim: 4 } shape { dim: 3 dim: 2 } } }
    layer { name: "lstm" type: "LSTM" bottom: "x" bottom: "cont" top: "h"
            recurrent_param { num_output: 5 debug_info: true
                              weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "h" bottom: "h" top: "loss" }
    """
    net = make_net("force_backward: true\n" + text)
    with captured_log() as caplog:
        net.forward()
        net.backward()
    for t in range(3):
        assert "[Forward] Layer lstm, time step %d, h data:" % t in caplog.text
        assert "[Backward] Layer lstm, time step %d, x diff:" % t in caplog.text
