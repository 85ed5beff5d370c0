"""Launches of neuron.cu for the layers of layers/neuron.py, neuron_math.py and dropout.py."""
from ..core import backend
from .loader import launch


def elementwise(kernel, *args):
    """neuron.cu's ``lowbit_<kernel>`` over the items of its first array argument."""
    launch("neuron", "lowbit_" + kernel, args[0].size, args[0].size, *args)


def prelu_layout(x, channel_shared):
    """(channels, inner) of x viewed as (N, channels, inner): item i takes the
    slope a[(i / inner) % channels]; (1, 1) when the slope is shared."""
    if channel_shared:
        return 1, 1
    return x.shape[1], x.size // max(x.shape[0] * x.shape[1], 1)


def prelu_backward(dy, x, a, channel_shared, da=None, dx=None):
    """PReLU's gradients for x and dy of shape (N, C, ...): ``da`` (the slopes'
    diff, accumulated) += sum over n and the spatial axes of dy x [x <= 0] (one
    sum if ``channel_shared``), in two passes: a sum per (n, c) row, then per
    slope over its rows; then ``dx`` (written) = dy (x > 0 ? 1 : a_c). The slope
    gradient comes first: in place, dx is dy."""
    if da is not None:
        channels = x.shape[1]
        inner = x.size // max(x.shape[0] * channels, 1)
        rows = x.size // inner if inner else 0
        part = backend.get_array_module(x).empty(rows, x.dtype)
        launch("neuron", "lowbit_prelu_slope_rows", rows, rows, inner, dy, x, part)
        slopes = 1 if channel_shared else channels
        launch("neuron", "lowbit_prelu_slope_add", slopes, slopes, rows // slopes, part, da)
    if dx is not None:
        elementwise("prelu_bwd", dy, x, a, dx, *prelu_layout(x, channel_shared))
