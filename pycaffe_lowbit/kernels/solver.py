"""Launches of ``solver.cu``: the fused update of every learnable param of a
net, and gradient clipping's sum of squares, on arrays.

``ParamTable(arrays)`` indexes the params once: ``arrays`` maps a kind
("data", "diff", "hist", "hist2", in that order) to the P arrays of that kind
(param p's arrays share a size; all of one float dtype, C-contiguous, on one
device). It holds the offsets (P + 1,) int64 of the params in one index of
``n`` items and the arrays' addresses (kinds x P,) uint64 on their device: the
kernels reach each param through them, so nothing is copied or concatenated.
``key(arrays)`` identifies the arrays (kinds, addresses, sizes, dtype): while
it is unchanged the table is still valid and can be reused.
"""
import numpy as np

from ..core import backend
from .loader import launch

FAMILY = "solver"
KINDS = ("data", "diff", "hist", "hist2")
# rule -> (kernel, number of history kinds)
RULES = {"sgd": ("lowbit_sgd_update", 1), "nesterov": ("lowbit_nesterov_update", 1),
         "adagrad": ("lowbit_adagrad_update", 1), "rmsprop": ("lowbit_rmsprop_update", 1),
         "adadelta": ("lowbit_adadelta_update", 2), "adam": ("lowbit_adam_update", 2)}
PARTIAL_SUMS = 1 << 16          # threads of the sum of squares (each a strided share)
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def address(a):
    """The address of an array's first element: a NumPy array's on the host, a
    CuPy array's on its device (``data.ptr``)."""
    if isinstance(a, np.ndarray):
        return int(a.ctypes.data)
    return int(a.data.ptr)


def key(arrays):
    """What identifies ``arrays`` for a table (None when they cannot form one:
    mixed or non-float dtypes, a strided array, sizes that differ per param)."""
    flat = [a for kind in KINDS for a in arrays.get(kind, ())]
    if not flat:
        return None
    dtype = flat[0].dtype
    if dtype not in _FLOATS or any(a.dtype != dtype or not a.flags.c_contiguous for a in flat):
        return None
    sizes = tuple(int(a.size) for a in arrays["data"])
    if any(tuple(int(a.size) for a in arrays[k]) != sizes for k in arrays):
        return None
    return (dtype.str, sizes) + tuple((k, tuple(address(a) for a in arrays[k]))
                                      for k in KINDS if k in arrays)


class ParamTable:
    """One index over a net's params (see the module docstring)."""

    def __init__(self, arrays):
        self.key = key(arrays)
        if self.key is None:
            raise ValueError("the params cannot form one table: one float dtype, "
                             "C-contiguous arrays and equal sizes per param are needed")
        data = arrays["data"]
        self.xp = backend.get_array_module(*data)
        self.dtype = data[0].dtype
        self.count = len(data)
        self.kinds = tuple(k for k in KINDS if k in arrays)
        if self.kinds != KINDS[:len(self.kinds)]:
            raise ValueError("a param table needs the kinds %s in order, got %s"
                             % (", ".join(KINDS), ", ".join(self.kinds)))
        sizes = np.array([a.size for a in data], np.int64)
        self.n = int(sizes.sum())
        self.offsets = self.xp.asarray(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64))
        self.addresses = self.xp.asarray(np.array(
            [address(a) for k in self.kinds for a in arrays[k]], np.uint64))

    def per_param(self, values, dtype=None):
        """An array of ``values`` on the table's device, in the params' dtype."""
        return self.xp.asarray(np.array(values, dtype or self.dtype))


def sum_of_squares(table):
    """sum over every param of sum(diff^2), accumulated in double: a float."""
    partial = table.xp.zeros(max(min(table.n, PARTIAL_SUMS), 1), np.float64)
    launch(FAMILY, "lowbit_params_sumsq", partial.size, partial.size, table.n, table.count,
           table.offsets, table.addresses, partial, dtype=table.dtype)
    return float(partial.sum())


def update(rule, table, per_param, reg, clip_scale, iter_scale, constants, apply=True):
    """One fused launch of ``rule``'s kernel over the table: ``per_param``
    (3 P,) the rates, decays and clips, ``reg`` (P,) uint8 (see solver.cu);
    ``clip_scale``, ``iter_scale`` and the rule's ``constants`` (momentum...)
    are cast to the params' dtype. Without ``apply`` the kernel only writes
    the update values into the diffs (the data stays)."""
    kernel, n_hist = RULES[rule]
    if len(table.kinds) != 2 + n_hist:
        raise ValueError("rule %s updates %d histories; the table has %s"
                         % (rule, n_hist, ", ".join(table.kinds)))
    t = table.dtype.type
    launch(FAMILY, kernel, table.n, table.n, table.count, table.offsets, table.addresses,
           per_param, reg, t(clip_scale), t(iter_scale), np.int32(bool(apply)),
           *[t(c) for c in constants],
           dtype=table.dtype)
