"""Official Caffe's own snapshot (lenet_resume_iter_20): its .solverstate and
.caffemodel restore into our nets and solvers, and ours of it is the same message."""
import os
import types

import numpy as np

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.formats import caffemodel
from pycaffe_lowbit.formats.blobproto import array_from_proto
from pycaffe_lowbit.proto import caffe_pb2
from pycaffe_lowbit.solvers import snapshot as snap
from support import paths

GOLDEN = os.path.join(paths.GOLDEN, "solvers")


# -- Caffe's own snapshot (golden) -----------------------------------------------------
def lenet_train_net():
    """The golden LeNet TRAIN net, with its Data layer replaced by an Input layer."""
    from pycaffe_lowbit.formats.text import read_net_param
    param = read_net_param(os.path.join(GOLDEN, "lenet_train_test.prototxt"))
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    del out.layer[:]
    for lp in param.layer:
        if lp.type == "Data":
            if any(r.phase == caffe_pb2.TEST for r in lp.include):
                continue
            inp = out.layer.add(name=lp.name, type="Input", top=list(lp.top))
            inp.input_param.shape.add(dim=[64, 1, 28, 28])
            inp.input_param.shape.add(dim=[64])
        else:
            out.layer.add().CopyFrom(lp)
    return caffe.Net(out, caffe.TRAIN)


def test_restore_caffe_golden_solverstate(tmp_path, monkeypatch):
    net = lenet_train_net()
    assert len(net.learnable_params) == 8
    s = types.SimpleNamespace(param=caffe_pb2.SolverParameter(), net=net, iter=0,
                              current_step=5,
                              history=[Blob(p.shape) for p in net.learnable_params])
    state_path = os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate")
    monkeypatch.chdir(tmp_path)      # learned_net is relative: found beside the state
    snap.restore(s, state_path)
    assert s.iter == 20 and s.current_step == 0
    state = caffemodel.read_binary_proto(state_path, caffe_pb2.SolverState)
    assert state.learned_net == "lenet_resume_iter_20.caffemodel"
    for blob, p, proto in zip(s.history, net.learnable_params, state.history):
        assert blob.shape == p.shape
        np.testing.assert_array_equal(blob.data, array_from_proto(proto))
    golden = np.load(os.path.join(GOLDEN, "resume.npz"))
    np.testing.assert_array_equal(net.params["conv1"][0].data, golden["snapshot__conv1__0"])
    np.testing.assert_array_equal(net.params["ip2"][1].data, golden["snapshot__ip2__1"])
    np.testing.assert_array_equal(net.params["ip1"][0].data[:16],
                                  golden["snapshot__ip1__0__rows0_16"])
    assert int(golden["restored_iter"]) == 20
    # Our own snapshot of it is byte-compatible: the same state message.
    s.param.snapshot_prefix = "lenet_resume"
    model = snap.snapshot(s)
    assert model == "lenet_resume_iter_20.caffemodel"
    ours = caffemodel.read_binary_proto("lenet_resume_iter_20.solverstate", caffe_pb2.SolverState)
    assert ours == state


def test_real_solver_restores_caffe_golden_state(tmp_path, monkeypatch):
    net = lenet_train_net()
    param = caffe_pb2.SolverParameter(type="SGD", base_lr=0.01, momentum=0.9,
                                      lr_policy="fixed")
    param.net_param.CopyFrom(net._param)
    param.net_param.ClearField("state")
    from pycaffe_lowbit import solvers
    s = solvers.get_solver(param)
    assert len(s.history) == 8
    monkeypatch.chdir(tmp_path)
    s.restore(os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate"))
    assert s.iter == 20
    state = caffemodel.read_binary_proto(os.path.join(GOLDEN, "lenet_resume_iter_20.solverstate"),
                                         caffe_pb2.SolverState)
    for blob, proto in zip(s.history, state.history):
        np.testing.assert_array_equal(blob.data, array_from_proto(proto))
    golden = np.load(os.path.join(GOLDEN, "resume.npz"))
    np.testing.assert_array_equal(s.net.params["conv2"][0].data, golden["snapshot__conv2__0"])
