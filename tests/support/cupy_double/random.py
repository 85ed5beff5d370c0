"""``cupy.random`` of the double: CuPy's generator API (a ``dtype`` argument,
float64 by default; ``seed``; ``RandomState``; ``default_rng``) drawing from
NumPy's PCG64. The streams differ from CuPy's XORWOW: a seed fixes a run under
the double, not the values a device draws."""
import numpy as np

from ._array import wrap

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError("cupy.random only supports float32 and float64 (got %s)" % dtype)
    return dtype


def _dtype_only(kwarg):
    """CuPy's ``rand``/``randn`` keywords: ``dtype`` only."""
    unknown = set(kwarg) - {"dtype"}
    if unknown:
        raise TypeError("rand() got unexpected keyword arguments %s" % ", ".join(sorted(unknown)))
    return kwarg.get("dtype", float)


def _size(size, args=()):
    return tuple(args) if args else size


class RandomState:
    """``cupy.random.RandomState(seed=None)``."""

    def __init__(self, seed=None):
        self.seed(seed)

    def seed(self, seed=None):
        self._rng = np.random.default_rng(None if seed is None else int(seed))

    def random_sample(self, size=None, dtype=float):
        return wrap(np.asarray(self._rng.random(size, _float_dtype(dtype))))

    def rand(self, *size, **kwarg):
        return self.random_sample(_size(None, size), _dtype_only(kwarg))

    def randn(self, *size, **kwarg):
        return self.standard_normal(_size(None, size), _dtype_only(kwarg))

    def standard_normal(self, size=None, dtype=float):
        return wrap(np.asarray(self._rng.standard_normal(size, _float_dtype(dtype))))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        dtype = _float_dtype(dtype)
        return wrap(np.asarray(self._rng.normal(loc, scale, size)).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        dtype = _float_dtype(dtype)
        return wrap(np.asarray(self._rng.uniform(low, high, size)).astype(dtype))

    def randint(self, low, high=None, size=None, dtype=int):
        return wrap(np.asarray(self._rng.integers(low, high, size, dtype=dtype)))

    def permutation(self, a):
        if isinstance(a, np.ndarray):
            raise TypeError("Unsupported type %s" % type(a))
        return wrap(self._rng.permutation(getattr(a, "_a", a)))

    random = ranf = sample = random_sample


_state = {"rs": RandomState()}


def get_random_state():
    return _state["rs"]


def set_random_state(rs):
    _state["rs"] = rs


def reset_states():
    _state["rs"] = RandomState()


def seed(seed=None):
    get_random_state().seed(seed)


def random_sample(size=None, dtype=float):
    return get_random_state().random_sample(size, dtype)


def rand(*size, **kwarg):
    return get_random_state().rand(*size, **kwarg)


def randn(*size, **kwarg):
    return get_random_state().randn(*size, **kwarg)


def standard_normal(size=None, dtype=float):
    return get_random_state().standard_normal(size, dtype)


def normal(loc=0.0, scale=1.0, size=None, dtype=float):
    return get_random_state().normal(loc, scale, size, dtype)


def uniform(low=0.0, high=1.0, size=None, dtype=float):
    return get_random_state().uniform(low, high, size, dtype)


def randint(low, high=None, size=None, dtype=int):
    return get_random_state().randint(low, high, size, dtype)


def permutation(a):
    return get_random_state().permutation(a)


random = ranf = sample = random_sample


class Generator:
    """``cupy.random.default_rng(seed)``'s generator: ``random``,
    ``standard_normal``, ``uniform``, ``integers``."""

    def __init__(self, seed=None):
        self._rng = np.random.default_rng(seed)

    def random(self, size=None, dtype=np.float64, out=None):
        return self._fill(self._rng.random(size, _float_dtype(dtype)), out)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        return self._fill(self._rng.standard_normal(size, _float_dtype(dtype)), out)

    def uniform(self, low=0.0, high=1.0, size=None, dtype=np.float64):
        return wrap(np.asarray(self._rng.uniform(low, high, size)).astype(_float_dtype(dtype)))

    def integers(self, low, high=None, size=None, dtype=np.int64, endpoint=False):
        return wrap(np.asarray(self._rng.integers(low, high, size, dtype, endpoint)))

    @staticmethod
    def _fill(values, out):
        if out is None:
            return wrap(np.asarray(values))
        out[...] = wrap(np.asarray(values))
        return out


def default_rng(seed=None):
    return Generator(seed)
