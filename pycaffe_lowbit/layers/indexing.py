"""Layers that gather rows by index, as BVLC Caffe computes them.

Embed (a lookup table W of shape (K, N) = (input_dim, num_output), bias b (N,)):

  top[..., :] = W[idx[...]] + b,     top shape = bottom shape + (N,)
  dW[k] += sum over positions p with idx_p == k of dtop_p,   db += sum_p dtop_p

  The bottom holds integer indices in [0, K) stored as floats; there is no
  gradient to it (Caffe aborts when asked, so force_backward skips it).

Filter (bottoms x_1..x_k, selector s last; tops y_1..y_k):

  y_t = x_t[S],  S = [i : s_i != 0] (in order);  dx_t[S] = dy_t, 0 elsewhere

  Every bottom has s.shape[0] items; s's other axes are 1. As in Caffe, the
  first reshape (at setup, before the selector is known) keeps all items.

BatchReindex (x, permutation r of float indices in [0, x.shape[0])):

  y[i] = x[int(r_i)],  y shape = (len(r),) + x.shape[1:]
  dx[j] = sum over i with int(r_i) == j of dy[i]   (a repeated index sums)

Parameter (no bottom; one blob of parameter_param.shape, zero at creation):

  top = the blob (the top shares its data, as Caffe's ShareData; here from
  setup on, so values written into the top before the first forward reach it);
  backward: blob.diff += top.diff.
"""
import numpy as np

from ..core import backend
from .base import Layer
from .registry import register


def scatter_add(target, index, values):
    """``target[index] += values`` with repeated indices summed (np.add.at;
    cupyx.scatter_add on the GPU)."""
    xp = backend.get_array_module(target)
    if xp is np:
        np.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        backend.cupyx().scatter_add(target, index, values)


def _int_indices(layer, data, upper, what, bound):
    """Float indices -> int64 (truncated, as static_cast<int>), checked to lie
    in [0, upper) before truncation, as Caffe's checks compare the floats;
    ``bound`` names what sets ``upper``."""
    xp = backend.get_array_module(data)
    if bool(xp.any((data < 0) | (data >= upper))):
        bad = backend.to_numpy(data).reshape(-1)
        bad = bad[(bad < 0) | (bad >= upper)][0]
        raise layer.error("%s must be in [0, %d) (%s), got %g" % (what, upper, bound, bad))
    return data.astype(np.int64)


@register("Embed")
class Embed(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        ep = self.param.embed_param
        self.num_output, self.input_dim = ep.num_output, ep.input_dim
        if self.num_output <= 0:
            raise self.error("EmbedLayer num_output must be positive (got %d)"
                             % self.num_output)
        if self.input_dim <= 0:
            raise self.error("EmbedLayer input_dim must be positive (got %d)"
                             % self.input_dim)
        self.bias_term = ep.bias_term
        shapes = [(self.input_dim, self.num_output)]
        if self.bias_term:
            shapes.append((self.num_output,))
        self.init_params(shapes, [ep.weight_filler, ep.bias_filler])

    def allow_force_backward(self, bottom_index):
        return False

    def reshape(self, bottom, top):
        top[0].reshape(bottom[0].shape + (self.num_output,))

    def forward(self, bottom, top):
        x = bottom[0].data
        xp = backend.get_array_module(x)
        if bool(xp.any(xp.floor(x) != x)):
            raise self.error("non-integer input: the bottom must hold integer indices")
        self._idx = _int_indices(self, x, self.input_dim, "embedding indices", "input_dim")
        y = self.blobs[0].data[self._idx]
        if self.bias_term:
            y += self.blobs[1].data
        top[0].data = y

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            raise self.error("Can't backpropagate to EmbedLayer input.")
        dy = top[0].diff.reshape(-1, self.num_output)
        if self.param_propagate_down[0]:
            scatter_add(self.blobs[0].diff, self._idx.reshape(-1), dy)
        if self.bias_term and self.param_propagate_down[1]:
            self.blobs[1].diff += dy.sum(axis=0)


@register("Filter")
class Filter(Layer):
    min_num_bottom = 2
    min_num_top = 1

    def layer_setup(self, bottom, top):
        if len(top) != len(bottom) - 1:
            raise self.error("Top.size() should be equal to bottom.size() - 1 "
                             "(%d tops, %d bottoms)" % (len(top), len(bottom)))
        self._first_reshape = True
        self._selector_index = len(bottom) - 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != self._selector_index

    def reshape(self, bottom, top):
        sel = bottom[-1]
        if sel.num_axes == 0 or any(d != 1 for d in sel.shape[1:]):
            raise self.error("Selector blob dimensions must be singletons (1), except "
                             "the first (selector shape %s)" % (sel.shape,))
        for b in bottom[:-1]:
            if not b.shape or b.shape[0] != sel.shape[0]:
                raise self.error("Each bottom should have the same 0th dimension as "
                                 "the selector blob (%s vs selector %s)"
                                 % (b.shape, sel.shape))
        xp = backend.get_array_module(sel.data)
        self._indices = xp.nonzero(sel.data.reshape(-1) != 0)[0]
        n = int(self._indices.size)
        if self._first_reshape:  # Caffe: before the first forward, keep every item
            n = bottom[0].shape[0]
            self._first_reshape = False
        for i, (t, b) in enumerate(zip(top, bottom)):
            count = t.count
            t.reshape((n,) + b.shape[1:])
            if t.count != count and i < len(self.loss_weights) and self.loss_weights[i]:
                # Caffe's shrinking Reshape keeps the loss weight in the top diff;
                # our Blob reallocates, so write it back.
                t.diff[...] = self.loss_weights[i]

    def forward(self, bottom, top):
        for t, b in zip(top, bottom):
            t.data = b.data[self._indices]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[-1]:
            raise self.error("Filter Layer cannot backpropagate to filter index inputs")
        for i, t in enumerate(top):
            if propagate_down[i]:
                xp = backend.get_array_module(t.diff)
                d = xp.zeros(bottom[i].shape, bottom[i].dtype)
                d[self._indices] = t.diff
                bottom[i].diff = d


@register("BatchReindex")
class BatchReindex(Layer):
    exact_num_bottom = 2
    exact_num_top = 1

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1

    def reshape(self, bottom, top):
        if bottom[1].num_axes != 1:
            raise self.error("the index bottom must have 1 axis, got shape %s"
                             % (bottom[1].shape,))
        if bottom[0].num_axes == 0:
            raise self.error("the data bottom needs at least 1 axis")
        top[0].reshape((bottom[1].shape[0],) + bottom[0].shape[1:])

    def forward(self, bottom, top):
        self._idx = _int_indices(self, bottom[1].data, bottom[0].shape[0],
                                 "Index specified for reindex layer",
                                 "the first axis of bottom 0")
        top[0].data = bottom[0].data[self._idx]

    def backward(self, top, propagate_down, bottom):
        if propagate_down[1]:
            raise self.error("Cannot backprop to index.")
        if propagate_down[0]:
            xp = backend.get_array_module(top[0].diff)
            d = xp.zeros(bottom[0].shape, bottom[0].dtype)
            scatter_add(d, self._idx, top[0].diff)
            bottom[0].diff = d


@register("Parameter")
class Parameter(Layer):
    exact_num_bottom = 0
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        if not self.blobs:
            shape = tuple(self.param.parameter_param.shape.dim)
            self.blobs = [self.new_blob(shape)]

    def reshape(self, bottom, top):
        top[0].reshape(self.blobs[0].shape)
        top[0].data = self.blobs[0].data  # shared from setup on: writes reach the blob

    def forward(self, bottom, top):
        top[0].data = self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        if self.param_propagate_down and self.param_propagate_down[0]:
            self.blobs[0].diff += top[0].diff
