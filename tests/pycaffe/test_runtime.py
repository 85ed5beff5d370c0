"""pycaffe's top-level helpers from _caffe: Timer, init_log, log, has_nccl, and
NCCL uids as bytes (upstream's test_nccl asserts ``isinstance(uid, bytes)``)."""
import logging
import time

import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.parallel import nccl


def test_caffe_1_0_top_level_names_exist():
    for name in ("Timer", "init_log", "log", "has_nccl", "NCCL", "get_solver", "io",
                 "layer_type_list", "set_random_seed", "set_multiprocess"):
        assert hasattr(caffe, name), name


def test_timer_measures_between_start_and_stop():
    t = caffe.Timer()
    assert t.ms == 0.0
    t.start()
    time.sleep(0.02)
    t.stop()
    first = t.ms
    assert 15 <= first < 2000
    time.sleep(0.01)
    assert t.ms == first                         # stopped: frozen


def test_init_log_and_log_write_glog_lines(capsys):
    caffe.init_log(0)
    caffe.log("hello from a script")
    err = capsys.readouterr().err
    assert err.startswith("I") and err.rstrip().endswith("] hello from a script")
    caffe.init_log(1)                            # WARNING: INFO lines go
    caffe.log("quiet")
    assert "quiet" not in capsys.readouterr().err
    with pytest.raises(ValueError, match="glog level"):
        caffe.init_log(7)
    caffe.init_log(0)
    logging.getLogger("pycaffe_lowbit").setLevel(logging.INFO)


def test_has_nccl_is_a_bool_and_new_uid_is_bytes():
    assert isinstance(caffe.has_nccl(), bool)
    assert isinstance(caffe.NCCL.new_uid(), bytes)


def test_cupy_unique_ids_round_trip_through_bytes():
    unique_id = tuple(range(-128, 128)) [:128]
    as_bytes = nccl.uid_to_bytes(unique_id)
    assert isinstance(as_bytes, bytes) and len(as_bytes) == 128
    assert nccl.uid_to_cupy(as_bytes) == unique_id
