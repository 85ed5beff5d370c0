"""Launches of accuracy.cu: Accuracy's top-k counts and ratios."""
from ..core import backend
from .loader import launch
from .softmax import layout


def accuracy(x, label, axis, top_k, ignore_label, bad_label, total, per_class=None):
    """total[0] = the fraction of counted positions whose label is among the
    top_k scores along ``axis``; per_class[c] (if given) the same over the
    positions labelled c. ``bad_label()`` is raised for a label outside the
    classes."""
    outer, channels, inner = layout(x.shape, axis)
    xp = backend.get_array_module(x)
    hits, counts = xp.zeros(channels + 1, "int32"), xp.zeros(channels + 1, "int32")
    bad = xp.zeros(1, "int32")
    n = outer * inner
    launch("accuracy", "lowbit_accuracy_count", n, n, channels, inner, x, label,
           ignore_label is not None, 0 if ignore_label is None else ignore_label, top_k, hits,
           counts, bad)
    if int(bad[0]):
        raise bad_label()
    n = 1 if per_class is None else 1 + channels
    launch("accuracy", "lowbit_accuracy_ratio", n, n, channels, hits, counts, total,
           total if per_class is None else per_class)
