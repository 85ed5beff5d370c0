"""Weight quantizers: a latent matrix W (num, k), one row per output filter, to
the effective matrix Q (num, k) a layer computes with.

    BinaryWeights    Q_nj = a_n * s(W_nj),  s(w) = +1 if w >= 0 else -1
                     (0 and -0.0 give +1), a_n = mean_j |W_nj| or 1
    TernaryWeights   D = 0.7 * mean_all |W - mean_all W|  (one per layer)
                     Q_nj = a_n * t_nj,  t = +1 if W > D, -1 if W < -D, else 0
                     a_n = mean of |W_nj| over |W_nj| > D (0 when there is none)
    StochasticSelection(q, ratio)
                     the rows a roulette picks keep W_n, the others take q's Q_n

``precision`` is the bits a quantized weight takes (1 binary, 2 ternary; the
per-row float32 a_n aside). The backward of every one is straight-through: dL/dW = dL/dQ, with no alpha
factor and no clipping mask (the SQ and HWGQ forks' rule). Values are computed
in W's dtype (float32 in a net), as the forks compute them.

On the GPU and under ``kernels.emulate()`` each forward runs the kernels of
``kernels/quant.cu``: BWN's row sums stay a BLAS matrix-vector product (as
here and in the fork); TWN's two means are the array module's reductions (as
here), its per-row alpha and SQ's row errors sum each row in double; the SQ
selection is still drawn on the host from ``backend.rng()``.
"""
import numpy as np

from ..core import backend
from ..cpu import jit, quant as cpu_quant
from ..kernels import quant as kq


def row_mean_abs(w, scratch=None):
    """a_n = sum_j |W_nj| * (1 / k), in W's dtype: the row sum as a matrix-vector
    product with a ones vector (a BLAS sgemv, as in the HWGQ fork), then one
    multiply by the rounded 1/k. With NumPy's OpenBLAS this reproduced the
    fork's float32 a_n bit for bit in LeNet-HWGQ's k = 500 and 800 layers; a
    float64 mean rounded to float32 is 1 ulp off in about 2/3 of the rows, which
    flips a few quantized activations downstream. ``scratch``: an array of w's
    shape to hold |W| (else one is allocated); |W| is taken on the threads
    (``cpu.quant.abs_rows``) where ``_threaded``."""
    xp = backend.get_array_module(w)
    k = w.shape[1]
    one = w.dtype.type(1)
    absolute = (cpu_quant.abs_rows(w, scratch) if _threaded(w, scratch)
                else xp.abs(w, out=scratch))
    return xp.matmul(absolute, xp.ones(k, w.dtype)) * (one / w.dtype.type(k))


def _threaded(w, out):
    """``cpu.quant``'s row passes take w and out (bit-equal to the NumPy ops,
    split over the threads): NumPy float arrays with Numba on, 2-D,
    C-contiguous, out a separate array of w's shape and dtype."""
    return (out is not None and out is not w and w.ndim == 2 and out.shape == w.shape
            and out.dtype == w.dtype and jit.runs(w, out)
            and w.flags.c_contiguous and out.flags.c_contiguous)


def _signed(w, a, out=None):
    """a where w >= 0 (0 and -0.0 included), else -a: a_n s(W_nj) for a (num, 1),
    or s(W_nj) for a = 1. As copysign(a, w + 0): -0.0 + 0 is +0.0 in IEEE
    arithmetic, so zeros of either sign take +a (and this is much faster than
    a ``where``). On the threads (``cpu.quant.signed_rows``) where ``_threaded``."""
    if _threaded(w, out):
        rows = a.reshape(-1) if np.ndim(a) else np.full(w.shape[0], a, w.dtype)
        return cpu_quant.signed_rows(w, rows, out)
    xp = backend.get_array_module(w)
    s = xp.add(w, w.dtype.type(0), out=out)
    return xp.copysign(a, s, out=s)


class _StraightThrough:
    takes_out = True   # forward(w, out=...) accepted (see BinaryWeights.forward)

    def backward(self, w, dq):
        """dL/dW = dL/dQ (straight-through)."""
        return dq


class BinaryWeights(_StraightThrough):
    """Q_nj = a_n * (W_nj >= 0 ? +1 : -1); a_n = mean_j |W_nj| (``use_alpha``)
    or 1. Shapes: (num, k) -> (num, k)."""

    precision = 1

    def __init__(self, use_alpha=True):
        self.use_alpha = bool(use_alpha)

    def scale(self, w):
        """a (num,): the per-row factor."""
        xp = backend.get_array_module(w)
        if self.use_alpha:
            return row_mean_abs(w)
        return xp.ones(w.shape[0], w.dtype)

    def forward(self, w, out=None):
        """Q; ``out`` (w's shape, not w itself): written and returned instead of a
        new array (a layer's buffer, reused at every forward: no page faults for
        a weight-sized array), and used first as the scratch for |W|."""
        if kq.runs(w):
            return kq.binary_weights(w, self.use_alpha)
        if self.use_alpha:
            a = row_mean_abs(w, out)[:, None]
        else:
            a = w.dtype.type(1)
        return _signed(w, a, out)


class TernaryWeights(_StraightThrough):
    """Q_nj = a_n * t_nj with one threshold D = 0.7 mean|W - mean W| over the
    whole matrix; t_nj = sign(W_nj) where |W_nj| > D, else 0; a_n = mean of
    |W_nj| over those elements of row n (0 when none). (num, k) -> (num, k)."""

    factor = 0.7
    precision = 2

    def threshold(self, w):
        """D: 0.7 times the mean absolute deviation from the mean, in W's dtype."""
        xp = backend.get_array_module(w)
        centred = w - xp.mean(w, dtype=w.dtype)
        return w.dtype.type(self.factor) * xp.mean(xp.abs(centred), dtype=w.dtype)

    def forward(self, w, out=None):
        """Q (num, k); the zeros of Q may be -0.0 (same products and sums).
        ``out`` is accepted for the common signature and not used."""
        if kq.runs(w):
            return kq.ternary_weights(w, self.factor)
        xp = backend.get_array_module(w)
        a = xp.abs(w)
        kept = a > self.threshold(w)
        count = kept.sum(axis=1)
        a *= kept
        alpha = a.sum(axis=1) / xp.maximum(count, 1).astype(w.dtype)  # 0 when none
        q = _signed(w, alpha[:, None])
        q *= kept
        return q


def row_errors(w, q):
    """e_n = ||W_n - Q_n||_1 / ||W_n||_1 (0 when ||W_n||_1 = 0), as float64
    on the host: (num,). The sums are in W's dtype (they only weigh a draw;
    in double on the kernel path)."""
    if kq.runs(w, q) and w.dtype == q.dtype:
        return kq.row_errors(w, q)
    xp = backend.get_array_module(w)
    d = xp.subtract(w, q)
    num = backend.to_numpy(xp.abs(d, out=d).sum(axis=1)).astype(np.float64)
    den = backend.to_numpy(xp.abs(w).sum(axis=1)).astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def roulette_select(errors, m, rng):
    """A boolean mask of ``m`` of the ``len(errors)`` rows, picked one at a time
    without replacement, each pick with probability e_n / sum(e) over the rows
    not yet picked (the SQ fork's roulette wheel).

    It is drawn in one pass with the equivalent exponential-race form
    (Efraimidis & Spirakis): row n gets the key log(u_n) / e_n with u_n uniform
    on (0, 1]; sorting by key, largest first, gives the order of the successive
    roulette picks, with exactly their distribution. Rows with e_n = 0 have no
    chance while a row with positive error remains; once only zero-error rows
    are left, the rest are picked uniformly among them (e_n = 0 means
    W_n = Q_n, so which ones does not change the effective weight).
    ``rng``: a numpy.random.Generator (the host draws, also on GPU).
    """
    errors = np.asarray(errors, np.float64)
    n = errors.shape[0]
    mask = np.zeros(n, bool)
    m = min(int(m), n)
    if m <= 0:
        return mask
    u = 1.0 - rng.random(n)                       # uniform on (0, 1]
    positive = errors > 0
    keys = np.full(n, -np.inf)
    keys[positive] = np.log(u[positive]) / errors[positive]
    order = np.lexsort((u, -keys))               # by key, largest first; ties by u
    mask[order[:m]] = True
    return mask


class StochasticSelection(_StraightThrough):
    """The SQ fork's stochastic quantization around a row quantizer ``inner``:
    m = int((1 - ratio / 100) * num) rows keep full precision, chosen by
    ``roulette_select`` with the errors e_n = ||W_n - Q_n||_1 / ||W_n||_1; the
    others take Q_n (same a_n as without selection). Redrawn at every
    ``forward``, from the library's host generator (``backend.rng()``, seeded by
    ``set_random_seed`` and the solver's ``random_seed``) unless ``rng`` is given.
    ``selected`` holds the last mask (num,) on the host."""

    def __init__(self, inner, ratio, rng=None):
        if not 0 <= ratio <= 100:
            raise ValueError("ratio must be a percentage in [0, 100] (got %g)" % ratio)
        self.inner = inner
        self.ratio = float(ratio)
        self.rng = rng
        self.selected = None

    @property
    def precision(self):
        """The quantized rows' bits (the selected rows stay float while training)."""
        return self.inner.precision

    def count(self, num):
        """m: how many of ``num`` rows stay in full precision."""
        return int((1.0 - self.ratio / 100.0) * num)

    def forward(self, w, out=None):
        """``out``: passed to the inner quantizer (see BinaryWeights.forward)."""
        xp = backend.get_array_module(w)
        if out is not None and getattr(self.inner, "takes_out", False):
            q = self.inner.forward(w, out=out)
        else:
            q = self.inner.forward(w)
        m = self.count(w.shape[0])
        if m == 0:
            self.selected = np.zeros(w.shape[0], bool)
            return q
        rng = self.rng if self.rng is not None else backend.rng()
        self.selected = roulette_select(row_errors(w, q), m, rng)
        if xp.may_share_memory(q, w):     # never write into the latent weights
            q = q.copy()
        if kq.runs(w, q) and w.dtype == q.dtype and q.flags.c_contiguous:
            return kq.keep_rows(w, self.selected, q)
        rows = xp.asarray(np.flatnonzero(self.selected))
        q[rows] = w[rows]
        return q
