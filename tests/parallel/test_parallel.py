"""Data-parallel machinery in one process: the world state, the communicators'
one-process and buffer logic, the Data layer's stride, the root-only solver
duties, the pycaffe surface. The multi-process runs are in test_parallel_mpi.py."""
import logging
import os

import numpy as np
import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.formats import text
from pycaffe_lowbit.parallel import LocalComm, DataParallel, launch, world
from pycaffe_lowbit.parallel.comm import flatten, unflatten
from pycaffe_lowbit.solvers import SGDSolver

from support import mpi_worker


@pytest.fixture(autouse=True)
def _one_solver():
    yield
    world.set_solver_count(1)
    world.set_solver_rank(0)
    world.set_multiprocess(False)


def test_world_env_detection():
    assert world.mpi_world_size({}) == (1, 0)
    assert world.mpi_world_size({"OMPI_COMM_WORLD_SIZE": "4",
                                 "OMPI_COMM_WORLD_RANK": "2"}) == (4, 2)
    assert world.mpi_world_size({"PMI_SIZE": "3", "PMI_RANK": "1"}) == (3, 1)


def test_pycaffe_surface_sets_the_world():
    caffe.set_solver_count(3)
    caffe.set_solver_rank(2)
    caffe.set_multiprocess(True)
    assert (caffe.solver_count(), caffe.solver_rank(), world.multiprocess()) == (3, 2, True)
    assert not world.root_solver()
    with pytest.raises(ValueError, match="solver count must be >= 1"):
        caffe.set_solver_count(0)


def test_flatten_round_trip(xp):
    arrays = [xp.arange(6, dtype=np.float32).reshape(2, 3), xp.ones(4, np.float32)]
    flat = flatten(arrays, xp)
    assert flat.shape == (10,)
    targets = [xp.zeros((2, 3), np.float32), xp.zeros(4, np.float32)]
    unflatten(flat * 2, targets)
    assert np.array_equal(backend.to_numpy(targets[0]), np.arange(6).reshape(2, 3) * 2)
    assert np.array_equal(backend.to_numpy(targets[1]), np.full(4, 2))
    with pytest.raises(TypeError, match="one dtype"):
        flatten([xp.ones(2, np.float32), xp.ones(2, np.float64)], xp)


def test_local_comm_is_identity():
    comm = LocalComm()
    a = np.array([1.0, 2.0], np.float32)
    assert comm.allreduce_sum([a])[0] is a and np.array_equal(a, [1, 2])
    assert comm.broadcast([a])[0] is a and comm.broadcast_object({"x": 1}) == {"x": 1}
    assert launch.join_world().size == 1 and caffe.solver_count() == 1


class _FakeWorld(LocalComm):
    """Two ranks where the other rank's diffs are ``other`` (for the scaling)."""
    size = 2

    def __init__(self, other):
        self.other = other

    def allreduce_sum(self, arrays):
        for a, o in zip(arrays, self.other):
            a += o
        return arrays


def _solver(tmp_path, batch=8, iters=4, **extra):
    cfg = dict(out=str(tmp_path), batch=batch, iter_size=1, iters=iters, **extra)
    return SGDSolver(mpi_worker.solver_param(cfg))


def test_gradients_are_summed_then_divided_by_the_world_size(tmp_path):
    solver = _solver(tmp_path)
    solver.net.forward_backward()
    diffs = [np.array(b.diff) for b in solver.net.learnable_params]
    other = [np.full_like(d, 3.0) for d in diffs]
    DataParallel(solver, _FakeWorld(other)).on_gradients_ready()
    for blob, d in zip(solver.net.learnable_params, diffs):
        np.testing.assert_allclose(blob.diff, (d + 3.0) / 2, rtol=1e-6)


def test_no_op_communicator_leaves_training_unchanged(tmp_path):
    caffe.set_random_seed(5)
    plain = _solver(tmp_path / "a")
    plain.step(3)
    caffe.set_random_seed(5)
    synced = _solver(tmp_path / "b")
    sync = DataParallel(synced, launch.join_world())
    sync.bcast()
    synced.add_callback(sync)
    synced.step(3)
    for a, b in zip(plain.net.learnable_params, synced.net.learnable_params):
        assert np.array_equal(a.data, b.data)


def _train_labels(batch, rank, count, batches):
    world.set_solver_count(count)
    world.set_solver_rank(rank)
    net_text = mpi_worker.NET % dict(train=mpi_worker.DB % "train",
                                     test=mpi_worker.DB % "test", batch=batch)
    net = caffe.Net(text.parse_net_text(net_text), caffe.TRAIN)
    labels = []
    for _ in range(batches):
        net.forward()
        labels.append(np.array(net.blobs["label"].data))
    return np.stack(labels)


def test_data_layer_strides_by_rank():
    """Rank r of 2 with batch 5 gets records r, r+2, ... of the stream, so the
    two ranks' k-th batches make the k-th batch of a single batch-10 run; over
    30 batches the 256-record database wraps (the stream goes on)."""
    single = _train_labels(10, 0, 1, 30)
    for rank in (0, 1):
        strided = _train_labels(5, rank, 2, 30)
        assert np.array_equal(strided, single[:, rank::2])


def test_only_the_root_solver_tests_and_snapshots(tmp_path):
    for rank in (1, 0):
        out = tmp_path / str(rank)
        out.mkdir()
        world.set_solver_count(2)
        world.set_solver_rank(rank)
        solver = _solver(out, iters=4, snapshot=2)
        tested = []
        solver.test_all = lambda: tested.append(solver.iter)
        solver.solve()
        files = sorted(os.listdir(out))
        if rank == 1:
            assert files == [] and tested == []
        else:
            assert files == ["snap_iter_2.caffemodel", "snap_iter_2.solverstate",
                             "snap_iter_4.caffemodel", "snap_iter_4.solverstate"]
            assert tested == [0, 3]


def test_non_root_ranks_log_only_warnings_and_errors(caplog):
    log = logging.getLogger("pycaffe_lowbit")
    world.set_solver_rank(1)
    with caplog.at_level(logging.INFO, logger="pycaffe_lowbit"):
        log.info("iteration line")
        log.error("a failure")
    assert [r.getMessage() for r in caplog.records] == ["a failure"]


def test_nccl_object_on_one_cpu_process(tmp_path):
    solver = _solver(tmp_path)
    nccl = caffe.NCCL(solver, caffe.NCCL.new_uid())
    nccl.bcast()
    solver.add_callback(nccl)
    solver.net.after_backward(nccl)
    solver.step(2)
    assert solver.iter == 2
    with pytest.raises(TypeError, match="caffe.NCCL object"):
        solver.net.after_backward(object())


def test_nccl_on_cpu_needs_the_mpi_world(tmp_path):
    solver = _solver(tmp_path)
    caffe.set_solver_count(2)
    with pytest.raises(RuntimeError, match="backed by MPI.*mpirun -np 2"):
        caffe.NCCL(solver, caffe.NCCL.new_uid())


def test_gpu_lists_need_one_process_per_gpu():
    assert launch.device_for_rank("", 0, 1) == ""
    assert launch.device_for_rank("1", 0, 1) == "1"
    assert launch.device_for_rank("0,1", 1, 2) == "1"
    with pytest.raises(ValueError, match="one process per GPU: mpirun -np 2"):
        launch.device_for_rank("0,1", 0, 1)
