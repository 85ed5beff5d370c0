"""pycaffe_lowbit.quant against closed forms written here, element by element:
binary / ternary weights, the SQ roulette (its statistics and seeding), the
HWGQ levels of both seed settings, and the straight-through gradients."""
import itertools
import os

import numpy as np
import pytest

from pycaffe_lowbit.core import backend
from pycaffe_lowbit import quant
from support import paths

F32 = np.float32


def _host(a):
    return backend.to_numpy(a)


def _weights(shape=(6, 10), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(F32)


# -- weights ----------------------------------------------------------------------
def test_binary_closed_form(xp):
    w = _weights()
    w[0, :3] = 0.0
    w[1, :2] = -0.0
    q = _host(quant.BinaryWeights(use_alpha=True).forward(xp.asarray(w)))
    for n, row in enumerate(w.astype(np.float64)):
        alpha = sum(abs(v) for v in row) / len(row)
        for j, v in enumerate(row):
            expected = alpha if v >= 0 else -alpha     # 0 and -0.0 -> +alpha
            assert q[n, j] == pytest.approx(expected, rel=1e-6)
    assert q.dtype == F32


def test_binary_without_alpha_is_plus_minus_one(xp):
    w = _weights()
    w[2, 4], w[3, 5] = 0.0, -0.0
    q = _host(quant.BinaryWeights(use_alpha=False).forward(xp.asarray(w)))
    np.testing.assert_array_equal(q, np.where(np.signbit(w) & (w != 0), -1.0, 1.0))
    np.testing.assert_array_equal(_host(quant.BinaryWeights(False).scale(xp.asarray(w))), 1)


def test_alpha_within_summation_error_of_the_forks(xp):
    """The fork's own float32 alphas (LeNet-HWGQ deploy case, conv2 and ip2,
    k = 500): ours are the BLAS row sum times float32(1/k), as the fork's.
    Equal when both BLAS kernels sum in the same order (OpenBLAS's Haswell
    kernels); otherwise within what reordering a float32 sum of k positive
    terms can move it, 2 (k - 1) 2^-24 relative (1-2 ulp seen with the AVX and
    SSE kernels)."""
    d = np.load(os.path.join(paths.GOLDEN, "hwgq", "alpha_lenet.npz"))
    for layer in ("conv2", "ip2"):
        w = d["param__%s__0" % layer]
        w = w.reshape(w.shape[0], -1)
        ours = _host(quant.row_mean_abs(xp.asarray(w))).astype(np.float64)
        fork = d["alpha__" + layer].astype(np.float64)
        bound = 2 * (w.shape[1] - 1) * 2.0 ** -24 * fork
        assert np.all(np.abs(ours - fork) <= bound), layer


def _ternary_reference(w):
    flat = [float(v) for v in w.ravel()]
    mean = sum(flat) / len(flat)
    delta = 0.7 * sum(abs(v - mean) for v in flat) / len(flat)
    q = np.zeros(w.shape)
    for n, row in enumerate(w.astype(np.float64)):
        big = [abs(v) for v in row if abs(v) > delta]
        alpha = sum(big) / len(big) if big else 0.0
        for j, v in enumerate(row):
            q[n, j] = alpha if v > delta else (-alpha if v < -delta else 0.0)
    return q, delta


def test_ternary_closed_form(xp):
    w = _weights((5, 12)) + F32(0.3)          # off-centre: D uses the centred W
    w[4] = F32(0.01) * w[4]                    # a row entirely under the threshold
    ref, delta = _ternary_reference(w)
    t = quant.TernaryWeights()
    assert float(t.threshold(xp.asarray(w))) == pytest.approx(delta, rel=1e-6)
    q = _host(t.forward(xp.asarray(w)))
    np.testing.assert_allclose(q, ref, rtol=1e-6, atol=0)
    assert np.all(q[4] == 0)


def test_straight_through_backward(xp):
    w, dq = xp.asarray(_weights()), xp.asarray(_weights(seed=1))
    for q in (quant.BinaryWeights(), quant.TernaryWeights(),
              quant.StochasticSelection(quant.BinaryWeights(), 50)):
        assert q.backward(w, dq) is dq


def test_row_errors(xp):
    w = _weights((4, 6))
    w[3] = 0
    q = _weights((4, 6), seed=2)
    q[3] = 0
    e = quant.row_errors(xp.asarray(w), xp.asarray(q))
    for n in range(3):
        expected = np.abs(w[n] - q[n]).sum(dtype=np.float64) / np.abs(w[n]).sum(dtype=np.float64)
        assert e[n] == pytest.approx(expected, rel=1e-6)
    assert e[3] == 0 and e.dtype == np.float64 and isinstance(e, np.ndarray)


# -- the SQ roulette --------------------------------------------------------------
def _sequential_inclusion(errors, m):
    """P(row n among the m picks) for sequential draws without replacement, each
    proportional to the errors of the rows left: by enumerating every order."""
    p = np.zeros(len(errors))
    for order in itertools.permutations(range(len(errors)), m):
        prob, left = 1.0, list(range(len(errors)))
        for i in order:
            prob *= errors[i] / sum(errors[j] for j in left)
            left.remove(i)
        for i in order:
            p[i] += prob
    return p


def test_roulette_first_pick_proportional_to_error():
    errors = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    rng = np.random.default_rng(7)
    draws = 10000
    counts = np.zeros(5)
    for _ in range(draws):
        counts += quant.roulette_select(errors, 1, rng)
    assert counts[4] == 0                       # zero error: never while others remain
    expected = draws * errors[:4] / errors.sum()
    chi2 = float(((counts[:4] - expected) ** 2 / expected).sum())
    assert chi2 < 16.27                         # 3 degrees of freedom, p = 0.001


def test_roulette_inclusion_matches_sequential_draws():
    errors = np.array([0.1, 0.5, 0.9, 0.2, 0.3])
    m, draws = 2, 10000
    rng = np.random.default_rng(11)
    counts = sum(quant.roulette_select(errors, m, rng).astype(int) for _ in range(draws))
    p = _sequential_inclusion(errors, m)
    sigma = np.sqrt(draws * p * (1 - p))
    assert np.all(np.abs(counts - draws * p) < 4.5 * sigma), (counts / draws, p)
    assert counts.sum() == m * draws


def test_roulette_zero_errors_are_uniform_and_last():
    rng = np.random.default_rng(3)
    draws = 6000
    only_one = sum(quant.roulette_select([0.0, 0.7, 0.0, 0.0], 2, rng).astype(int)
                   for _ in range(draws))
    assert only_one[1] == draws                 # the one positive error always goes first
    others = only_one[[0, 2, 3]]
    assert np.all(np.abs(others - draws / 3) < 4.5 * np.sqrt(draws * 2 / 9))
    all_zero = sum(quant.roulette_select(np.zeros(4), 1, rng).astype(int) for _ in range(draws))
    assert np.all(np.abs(all_zero - draws / 4) < 4.5 * np.sqrt(draws * 3 / 16))


def test_roulette_counts():
    rng = np.random.default_rng(0)
    assert not quant.roulette_select([1.0, 2.0], 0, rng).any()
    assert quant.roulette_select([1.0, 2.0], 5, rng).all()
    assert quant.roulette_select(np.ones(9), 4, rng).sum() == 4


@pytest.mark.parametrize("ratio, kept", [(50, 4), (75, 2), (87.5, 1), (100, 0), (0, 8)])
def test_selection_mixes_rows(xp, ratio, kept):
    """m = int((1 - ratio/100) num) rows keep W_n, the others take Q_n."""
    w = _weights((8, 5))
    sel = quant.StochasticSelection(quant.BinaryWeights(), ratio)
    assert sel.count(8) == kept
    eff = _host(sel.forward(xp.asarray(w)))
    q = _host(quant.BinaryWeights().forward(xp.asarray(w)))
    assert sel.selected.sum() == kept
    np.testing.assert_array_equal(eff[sel.selected], w[sel.selected])
    np.testing.assert_array_equal(eff[~sel.selected], q[~sel.selected])


def test_selection_seeded_by_the_library_and_redrawn(xp):
    w = xp.asarray(_weights((40, 9)))
    sel = quant.StochasticSelection(quant.TernaryWeights(), 50)

    def draw(seed):
        backend.set_random_seed(seed)
        masks = []
        for _ in range(3):
            sel.forward(w)
            masks.append(sel.selected.copy())
        return masks

    first, again, other = draw(5), draw(5), draw(6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert not np.array_equal(first[0], first[1])           # redrawn every forward


def test_selection_never_writes_the_latent_weights(xp):
    class Identity:
        def forward(self, w):
            return w
    w = xp.asarray(_weights((6, 4)))
    before = _host(w).copy()
    quant.StochasticSelection(Identity(), 50).forward(w)
    np.testing.assert_array_equal(_host(w), before)


def test_selection_ratio_checked():
    with pytest.raises(ValueError, match="ratio"):
        quant.StochasticSelection(quant.BinaryWeights(), 120)


# -- activations ------------------------------------------------------------------
def _midpoint(a, b):
    return (F32(a) + F32(b)) / F32(2)


SETTINGS = {"3ne": [0.538, 1.076, 1.614], "2n": [0.453, 1.51]}


def _hwgq_reference(x, centers, slope):
    c = [F32(v) for v in centers]
    t = [_midpoint(a, b) for a, b in zip(c, c[1:])]
    out = []
    for v in x:
        if v <= 0:
            out.append(-F32(slope))
        else:
            out.append(next((ci for ci, ti in zip(c, t) if v <= ti), c[-1]))
    return np.array(out, F32)


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_hwgq_levels(xp, setting, slope):
    centers = SETTINGS[setting]
    t = [_midpoint(a, b) for a, b in zip(centers, centers[1:])]
    probes = [-3.0, -1e-8, -0.0, 0.0, 1e-8, 0.2] + [F32(c) for c in centers] + [100.0]
    for ti in t:                       # each threshold, and the float32 on either side
        probes += [np.nextafter(ti, F32(-1)), ti, np.nextafter(ti, F32(9))]
    x = np.array(probes, F32)
    h = quant.HWGQ(centers, slope)
    np.testing.assert_array_equal(h.thresholds, np.array(t, F32))
    y = _host(h.forward(xp.asarray(x)))
    ref = _hwgq_reference(x, centers, slope)
    np.testing.assert_array_equal(y, ref)
    if slope == 0:                     # the fork writes -0.0 for x <= 0
        assert np.all(np.signbit(y[x <= 0]))
    levels = sorted(set(ref[x > 0].tolist()))
    assert levels == [float(F32(c)) for c in centers]


def test_hwgq_seed_thresholds():
    assert quant.HWGQ(SETTINGS["3ne"]).thresholds.tolist() == [F32(0.807), F32(1.345)]
    assert quant.HWGQ(SETTINGS["2n"]).thresholds.tolist() == [F32(0.9815)]


@pytest.mark.parametrize("centers", [[], [0.5, 0.5], [-0.1, 1.0], [1.0, 0.5]])
def test_hwgq_rejects_bad_centers(centers):
    with pytest.raises(ValueError, match="center"):
        quant.HWGQ(centers)


def test_value_functions(xp):
    x = np.array([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 3.0], F32)
    xs = xp.asarray(x)
    np.testing.assert_array_equal(_host(quant.Sign().forward(xs)),
                                  [-1, -1, -1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(_host(quant.HardTanh().forward(xs)),
                                  [-1, -1, -0.5, 0, 0, 0.5, 1, 1])
    np.testing.assert_array_equal(_host(quant.LeakyReLU(0.1).forward(xs)),
                                  [v if v > 0 else v * F32(0.1) for v in x])


def test_relu_gradient(xp):
    clip = F32(1.614)
    x = np.array([-1.0, -0.0, 0.0, 0.5, clip, np.nextafter(clip, F32(9)), 5.0], F32)
    dy = np.arange(1, 8, dtype=F32)
    g = _host(quant.ReLUGrad(0.1, 1.614).backward(xp.asarray(x), xp.asarray(dy)))
    expected = [d * (1 if v > 0 else F32(0.1)) * (v <= clip) for v, d in zip(x, dy)]
    np.testing.assert_array_equal(g, np.array(expected, F32))
    no_clip = _host(quant.ReLUGrad(0.0, 0.0).backward(xp.asarray(x), xp.asarray(dy)))
    np.testing.assert_array_equal(no_clip, [0, 0, 0, 4, 5, 6, 7])


def test_hard_tanh_gradient(xp):
    x = np.array([-1.5, np.nextafter(F32(-1), F32(-2)), -1.0, 0.0, 1.0,
                  np.nextafter(F32(1), F32(2)), 2.0], F32)
    dy = np.arange(1, 8, dtype=F32)
    g = _host(quant.HardTanhGrad(1.0).backward(xp.asarray(x), xp.asarray(dy)))
    np.testing.assert_array_equal(g, [0, 0, 3, 4, 5, 0, 0])
    np.testing.assert_array_equal(
        _host(quant.HardTanhGrad(0).backward(xp.asarray(x), xp.asarray(dy))), dy)


def test_activation_quantizer_joins_value_and_gradient(xp):
    q = quant.ActivationQuantizer(quant.Sign(), quant.HardTanhGrad(1.0))
    x = xp.asarray(np.array([-2.0, -0.5, 0.0, 0.5, 2.0], F32))
    dy = xp.ones(5, F32)
    np.testing.assert_array_equal(_host(q.forward(x)), [-1, -1, 1, 1, 1])
    np.testing.assert_array_equal(_host(q.backward(x, dy)), [0, 1, 1, 1, 0])
