"""Layers that move no values: Split, Flatten, Reshape, Silence.

Split    tops share the bottom's data; backward: dx = sum_i dy_i.
Flatten  y = x viewed with axes [axis, end_axis] merged into one; dx = dy viewed back.
Reshape  y = x viewed in ``reshape_param.shape`` (0 copies a bottom dim, -1 is
         inferred), replacing axes [axis, axis + num_axes) of the bottom.
Silence  no tops; backward writes zero diffs.

Shared memory is re-shared at every forward (data) and backward (diff), since
``Blob.data = ...`` replaces arrays. None of these allows in-place use.
"""
from .base import Layer
from .registry import register


def canonical_axis(layer, blob, axis, what="axis"):
    """Caffe's CanonicalAxisIndex, with an error naming the layer."""
    try:
        return blob.canonical_axis(int(axis))
    except IndexError:
        raise layer.error("%s %d out of range for a %d-axis bottom of shape %s"
                          % (what, axis, blob.num_axes, blob.shape)) from None


def _no_in_place(layer, bottom, top):
    if any(t is bottom[0] for t in top):
        raise layer.error("does not allow in-place computation")


@register("Split")
class Split(Layer):
    exact_num_bottom = 1
    min_num_top = 1

    def reshape(self, bottom, top):
        _no_in_place(self, bottom, top)
        for t in top:
            t.reshape(bottom[0].shape)

    def forward(self, bottom, top):
        for t in top:
            t.data = bottom[0].data

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if len(top) == 1:
            bottom[0].diff = top[0].diff.copy()
            return
        xp = bottom[0].xp
        total = xp.add(top[0].diff, top[1].diff)  # a fresh array: top diffs may alias
        for t in top[2:]:
            total += t.diff
        bottom[0].diff = total


class _View(Layer):
    """A top that is the bottom's memory in another shape (``reshape`` sets the
    shape): data and diff are views, re-taken at every pass, never copies."""
    exact_num_bottom = 1
    exact_num_top = 1

    def forward(self, bottom, top):
        top[0].data = bottom[0].data.reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff = top[0].diff.reshape(bottom[0].shape)


@register("Flatten")
class Flatten(_View):
    def reshape(self, bottom, top):
        _no_in_place(self, bottom, top)
        fp = self.param.flatten_param
        shape = bottom[0].shape
        start = canonical_axis(self, bottom[0], fp.axis)
        end = canonical_axis(self, bottom[0], fp.end_axis, "end_axis")
        if end + 1 < start:
            raise self.error("end_axis (%d) must not precede axis (%d)" % (end, start))
        top[0].reshape(shape[:start] + (bottom[0].count_range(start, end + 1),)
                       + shape[end + 1:])


@register("Reshape")
class Reshape(_View):
    def layer_setup(self, bottom, top):
        _no_in_place(self, bottom, top)
        dims = [int(d) for d in self.param.reshape_param.shape.dim]
        self._copy_axes = [i for i, d in enumerate(dims) if d == 0]
        inferred = [i for i, d in enumerate(dims) if d == -1]
        if len(inferred) > 1:
            raise self.error("new shape %s contains multiple -1 dims; at most a "
                             "single (1) value of -1 may be specified" % (dims,))
        if any(d < -1 for d in dims):
            raise self.error("new shape %s has a dim below -1 (expected > 0, "
                             "0 to copy or -1 to infer)" % (dims,))
        self._inferred = inferred[0] if inferred else -1
        self._dims = dims

    def reshape(self, bottom, top):
        _no_in_place(self, bottom, top)
        rp = self.param.reshape_param
        b = bottom[0]
        axis = rp.axis
        start = axis if axis >= 0 else b.num_axes + axis + 1
        if not 0 <= start <= b.num_axes:
            raise self.error("axis %d out of range for a %d-axis bottom"
                             % (axis, b.num_axes))
        if rp.num_axes < -1:
            raise self.error("num_axes must be >= 0, or -1 for all (got %d)" % rp.num_axes)
        end = b.num_axes if rp.num_axes == -1 else start + rp.num_axes
        if end > b.num_axes:
            raise self.error("end_axis = axis + num_axes = %d is out of range for a "
                             "%d-axis bottom" % (end, b.num_axes))
        shape = list(b.shape[:start]) + list(self._dims) + list(b.shape[end:])
        for i in self._copy_axes:
            if start + i >= b.num_axes:
                raise self.error("new shape contains a 0 at dim %d, but there was "
                                 "no corresponding bottom axis to copy" % i)
            shape[start + i] = b.shape[start + i]
        if self._inferred >= 0:
            explicit = 1
            for i, d in enumerate(shape):
                if i != start + self._inferred:
                    explicit *= d
            if explicit == 0 or b.count % explicit:
                raise self.error("bottom count (%d) must be divisible by the product "
                                 "of the specified dimensions (%d)" % (b.count, explicit))
            shape[start + self._inferred] = b.count // explicit
        count = 1
        for d in shape:
            count *= d
        if count != b.count:
            raise self.error("output count must match input count: shape %s has %d "
                             "values, bottom %s has %d" % (shape, count, b.shape, b.count))
        top[0].reshape(shape)


@register("Silence")
class Silence(Layer):
    min_num_bottom = 1
    exact_num_top = 0

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        for b, down in zip(bottom, propagate_down):
            if down:
                b.diff = b.xp.zeros(b.shape, b.dtype)
