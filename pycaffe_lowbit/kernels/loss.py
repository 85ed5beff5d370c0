"""Launches of loss.cu for layers/loss.py, loss_classification.py and loss_distance.py.

A forward returns the sum of the per-position loss terms (a 0-d device array)
and, where the layer counts positions, their number; a label outside the
classes raises ``bad_label()`` (the layer's own error). ``scale`` arguments
are one-element arrays (``weight_over``): the top's diff, the loss weight,
over the normaliser, so a backward never waits for the host.
"""
from ..core import backend
from .loader import launch
from .softmax import layout


def _xp(a):
    return backend.get_array_module(a)


def _ignore(ignore_label):
    """(has_ignore, ignore_label) as the kernels take them."""
    return ignore_label is not None, 0 if ignore_label is None else ignore_label


def _flag(like):
    return _xp(like).zeros(1, "int32")


def _checked(bad, bad_label):
    if int(bad[0]):
        raise bad_label()


def weight_over(top_diff, normaliser):
    """scale[0] = w / normaliser, w the loss weight (the scalar top's diff)."""
    return (top_diff.reshape(1) / normaliser).astype(top_diff.dtype, copy=False)


def softmax_loss_forward(prob, label, axis, ignore_label, bad_label):
    """SoftmaxWithLoss: (sum of -log max(p_label, FLT_MIN), number of counted
    positions), both 0-d arrays of prob's dtype."""
    outer, channels, inner = layout(prob.shape, axis)
    n = outer * inner
    xp, bad = _xp(prob), _flag(prob)
    loss, count = xp.empty(n, prob.dtype), xp.empty(n, prob.dtype)
    launch("loss", "lowbit_softmax_loss_fwd", n, n, channels, inner, prob, label,
           *_ignore(ignore_label), loss, count, bad)
    _checked(bad, bad_label)
    return loss.sum(), count.sum()


def softmax_loss_backward(prob, label, axis, ignore_label, scale, dx):
    """dx = (p - onehot(label)) scale[0], 0 at ignored positions."""
    _, channels, inner = layout(prob.shape, axis)
    launch("loss", "lowbit_softmax_loss_bwd", prob.size, prob.size, channels, inner, prob,
           label, *_ignore(ignore_label), scale, dx)


def difference(a, b):
    """A new array a - b (b of a's count)."""
    diff = _xp(a).empty_like(a)
    launch("loss", "lowbit_loss_diff", a.size, a.size, a, b, diff)
    return diff


def scaled(x, top_diff, sign, num, out):
    """out = ((sign w) / num) x, w the loss weight (the top's diff)."""
    launch("loss", "lowbit_loss_scaled", x.size, x.size, x, top_diff.reshape(1), sign, num, out)


def sigmoid_xent_forward(x, t, ignore_label):
    """(sum of the loss terms, 0-d; number of counted positions, an int)."""
    xp = _xp(x)
    loss, count = xp.empty(x.size, x.dtype), xp.empty(x.size, x.dtype)
    launch("loss", "lowbit_sigmoid_xent_fwd", x.size, x.size, x, t, *_ignore(ignore_label),
           loss, count)
    return loss.sum(), int(count.sum())


def sigmoid_xent_backward(x, t, ignore_label, scale, dx):
    launch("loss", "lowbit_sigmoid_xent_bwd", x.size, x.size, x, t, *_ignore(ignore_label),
           scale, dx)


def hinge_forward(x, label, bad_label):
    """t = max(0, 1 + s x) for x (num, dim), a new array."""
    t, bad = _xp(x).empty_like(x), _flag(x)
    launch("loss", "lowbit_hinge_fwd", x.size, x.size, x.shape[1], x, label, t, bad)
    _checked(bad, bad_label)
    return t


def hinge_backward(t, label, l2, scale, dx):
    launch("loss", "lowbit_hinge_bwd", t.size, t.size, t.shape[1], t, label, l2, scale, dx)


def multinomial_forward(p, label, bad_label):
    """Sum over the rows of p (num, dim) of -log(max(p_label, 1e-20)), 0-d."""
    loss, bad = _xp(p).empty(p.shape[0], p.dtype), _flag(p)
    launch("loss", "lowbit_multinomial_fwd", p.shape[0], p.shape[0], p.shape[1], p, label, loss,
           bad)
    _checked(bad, bad_label)
    return loss.sum()


def multinomial_backward(p, label, scale, dp):
    launch("loss", "lowbit_multinomial_bwd", p.size, p.size, p.shape[1], p, label, scale, dp)


def contrastive_forward(a, b, y, margin, legacy):
    """For a, b (num, channels): (diff, dist_sq, the loss terms' sum, 0-d)."""
    xp = _xp(a)
    num = a.shape[0]
    diff, dist_sq, loss = xp.empty_like(a), xp.empty(num, a.dtype), xp.empty(num, a.dtype)
    launch("loss", "lowbit_contrastive_fwd", num, num, a.shape[1], a, b, y, margin, legacy, diff,
           dist_sq, loss)
    return diff, dist_sq, loss.sum()


def contrastive_backward(diff, dist_sq, y, margin, legacy, top_diff, sign, num, dx):
    launch("loss", "lowbit_contrastive_bwd", diff.size, diff.size, diff.shape[1], diff, dist_sq,
           y, margin, legacy, top_diff.reshape(1), sign, num, dx)


def infogain_forward(prob, label, h, axis, ignore_label, bad_label):
    """(sum of the loss terms, 0-d; number of counted positions, an int)."""
    outer, channels, inner = layout(prob.shape, axis)
    n = outer * inner
    xp, bad = _xp(prob), _flag(prob)
    loss, count = xp.empty(n, prob.dtype), xp.empty(n, prob.dtype)
    launch("loss", "lowbit_infogain_fwd", n, n, channels, inner, prob, label, h,
           *_ignore(ignore_label), loss, count, bad)
    _checked(bad, bad_label)
    return loss.sum(), int(count.sum())


def infogain_backward(prob, label, h, axis, ignore_label, scale, dx):
    _, channels, inner = layout(prob.shape, axis)
    launch("loss", "lowbit_infogain_bwd", prob.size, prob.size, channels, inner, prob, label, h,
           *_ignore(ignore_label), scale, dx)
