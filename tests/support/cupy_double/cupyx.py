"""``cupyx`` of the double: ``scatter_add`` (unbuffered, as ``numpy.add.at``)."""
import numpy as np

from ._array import ndarray, unwrap, unwrap_key


def scatter_add(a, slices, value):
    if not isinstance(a, ndarray):
        raise TypeError("Unsupported type %s" % type(a))
    np.add.at(a._a, unwrap_key(slices), unwrap(value))
