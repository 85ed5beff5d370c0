"""Fillers: Caffe's deterministic fillers exactly, the random ones by their moments."""
import math

import numpy as np
import pytest
from google.protobuf import text_format

from support import golden
from pycaffe_lowbit.core import backend
from pycaffe_lowbit.core.blob import Blob
from pycaffe_lowbit.core.fillers import FillerError, fill, filler_values
from pycaffe_lowbit.proto import caffe_pb2

SHAPE = (400, 300)       # fan_in 300, fan_out 400


def filler(text):
    return text_format.Parse(text, caffe_pb2.FillerParameter())


def draw(text, shape=SHAPE):
    return filler_values(filler(text), shape, np.random.default_rng(0))


def test_constant_is_exact():
    assert (draw('type: "constant" value: 0.3') == np.float32(0.3)).all()  # a float field
    assert (draw("") == 0).all()                 # default: constant 0


def test_uniform_range_and_mean():
    v = draw('type: "uniform" min: -0.7 max: 0.2')
    assert v.min() >= -0.7 and v.max() < 0.2
    assert v.mean() == pytest.approx(-0.25, abs=0.01)


def test_gaussian_moments_and_sparse_rate():
    v = draw('type: "gaussian" mean: 0.1 std: 0.5')
    assert v.mean() == pytest.approx(0.1, abs=0.01) and v.std() == pytest.approx(0.5, rel=0.02)
    sparse = draw('type: "gaussian" std: 1 sparse: 20')
    assert (sparse != 0).mean() == pytest.approx(20 / SHAPE[0], rel=0.1)


def test_positive_unitball_rows_sum_to_one():
    v = draw('type: "positive_unitball"', (20, 3, 4))
    assert (v >= 0).all()
    np.testing.assert_allclose(v.reshape(20, -1).sum(axis=1), 1.0)


@pytest.mark.parametrize("norm, n", [("FAN_IN", 300), ("FAN_OUT", 400), ("AVERAGE", 350)])
def test_xavier_and_msra_scale(norm, n):
    x = draw('type: "xavier" variance_norm: %s' % norm)
    assert np.abs(x).max() <= math.sqrt(3.0 / n)
    assert x.var() == pytest.approx(1.0 / n, rel=0.03)        # U(-a, a): a^2 / 3
    m = draw('type: "msra" variance_norm: %s' % norm)
    assert m.var() == pytest.approx(2.0 / n, rel=0.03)


def test_bilinear_matches_caffe_exactly():
    d = np.load(golden.case_path("layers", "fillers"))
    ref = d["param__f_bilinear__0"]
    ours = filler_values(filler('type: "bilinear"'), ref.shape)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-7)


def test_fill_writes_blob_in_its_dtype():
    blob = Blob((3, 4), dtype=np.float32)
    backend.set_random_seed(5)
    fill(blob, filler('type: "gaussian" std: 2'))
    first = blob.data.copy()
    backend.set_random_seed(5)
    fill(blob, filler('type: "gaussian" std: 2'))
    assert blob.data.dtype == np.float32
    np.testing.assert_array_equal(first, blob.data)        # seeded: reproducible


@pytest.mark.parametrize("text", [
    'type: "uniform" min: -0.5 max: 2', 'type: "gaussian" std: 0.01 mean: 1',
    'type: "gaussian" std: 3 sparse: 40', 'type: "xavier" variance_norm: AVERAGE',
    'type: "msra" variance_norm: FAN_OUT'])
def test_large_blobs_fill_in_chunks_with_the_same_values(monkeypatch, text):
    """A blob past CHUNK values is drawn in chunks (no float64 copy of it all:
    AlexNet's fc6 would add 302 MB to the peak); the values are the ones
    filler_values gives, cast, from the same stream."""
    from pycaffe_lowbit.core import fillers
    monkeypatch.setattr(fillers, "CHUNK", 1000)
    shape = (97, 41)                                   # 3977 values: 3 whole chunks and a part
    backend.set_random_seed(11)
    want = filler_values(filler(text), shape).astype(np.float32)
    after = backend.rng().random()
    blob = Blob(shape, dtype=np.float32)
    backend.set_random_seed(11)
    fill(blob, filler(text))
    np.testing.assert_array_equal(blob.data, want)
    assert backend.rng().random() == after             # the stream moved on by the same draws


def test_golden_filler_statistics_agree_with_caffe():
    """Our draws and Caffe's have the same spread for each filler of the case."""
    d = np.load(golden.case_path("layers", "fillers"))
    param = text_format.Parse(str(d["prototxt"]), caffe_pb2.NetParameter())
    for layer in param.layer:
        if layer.type != "InnerProduct":
            continue
        ref = d["param__%s__0" % layer.name]
        ours = filler_values(layer.inner_product_param.weight_filler, ref.shape,
                             np.random.default_rng(1))
        ref_std, ref_mean = float(ref.std()), float(ref.mean())
        assert float(ours.std()) == pytest.approx(ref_std, rel=0.15, abs=1e-7), layer.name
        assert float(ours.mean()) == pytest.approx(ref_mean, abs=0.1 * max(ref_std, 1e-3)), layer.name


def test_unknown_type_and_bad_shapes_are_clear():
    with pytest.raises(FillerError, match="unknown filler type 'xaviar'"):
        draw('type: "xaviar"')
    with pytest.raises(FillerError, match="bilinear.*4-D"):
        draw('type: "bilinear"', (3, 4))
