"""Concat and Slice: join bottoms along an axis, or cut one bottom into tops.

Concat  y = [x_0, x_1, ...] along ``axis`` (legacy ``concat_dim``); every other
        dim must agree. Backward: dx_i = the matching block of dy.
Slice   tops are consecutive blocks of x along ``axis`` (legacy ``slice_dim``),
        cut at ``slice_point``s, or evenly split when none are given.
        Backward: dx = [dy_0, dy_1, ...] along the axis.

With a single bottom (Concat) or top (Slice), the top shares data and diff with
the bottom, as in Caffe. Otherwise blocks are copied, so no top aliases a bottom
(on the kernel path, GPU or emulated, by copy.cu's block kernels: ``kernels.copy``).
"""
from .. import kernels
from ..kernels import copy as copy_kernels
from .base import Layer
from .registry import register
from .shape_ops import canonical_axis


def _legacy_axis(layer, blob, param, new_name, old_name):
    """The axis from ``new_name`` or the deprecated unsigned ``old_name``."""
    if param.HasField(old_name):
        axis = getattr(param, old_name)
        if axis >= 2 ** 31:
            raise layer.error("casting %s from uint32 to int32 produced a negative "
                              "result; %s must satisfy 0 <= %s < 32"
                              % (old_name, old_name, old_name))
        if axis >= blob.num_axes:
            raise layer.error("%s %d out of range for a %d-axis bottom"
                              % (old_name, axis, blob.num_axes))
        return axis
    return canonical_axis(layer, blob, getattr(param, new_name))


def _check_exclusive(layer, param, new_name, old_name):
    if param.HasField(new_name) and param.HasField(old_name):
        raise layer.error("either %s or %s should be specified; not both"
                          % (new_name, old_name))


def _block(axis, start, stop):
    """An index selecting [start, stop) along ``axis``."""
    return (slice(None),) * axis + (slice(start, stop),)


@register("Concat")
class Concat(Layer):
    min_num_bottom = 1
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        _check_exclusive(self, self.param.concat_param, "axis", "concat_dim")

    def reshape(self, bottom, top):
        cp = self.param.concat_param
        axis = _legacy_axis(self, bottom[0], cp, "axis", "concat_dim")
        shape = list(bottom[0].shape)
        for i, b in enumerate(bottom[1:], 1):
            if b.num_axes != len(shape):
                raise self.error("all inputs must have the same #axes: bottom[0] %s, "
                                 "bottom[%d] '%s' %s" % (bottom[0].shape, i,
                                                         self._bottom_name(i), b.shape))
            for j in range(len(shape)):
                if j != axis and b.shape[j] != shape[j]:
                    raise self.error(
                        "all inputs must have the same shape, except at concat_axis "
                        "%d: bottom[0] %s, bottom[%d] '%s' %s"
                        % (axis, bottom[0].shape, i, self._bottom_name(i), b.shape))
            shape[axis] += b.shape[axis]
        self._axis = axis
        top[0].reshape(shape)

    def _bottom_name(self, i):
        names = self.param.bottom
        return names[i] if i < len(names) else "?"

    def forward(self, bottom, top):
        if len(bottom) == 1:
            top[0].data = bottom[0].data
            return
        xp = bottom[0].xp
        if kernels.active(bottom[0].data):
            top[0].data = copy_kernels.concat([b.data for b in bottom], self._axis)
            return
        top[0].data = xp.concatenate([b.data for b in bottom], axis=self._axis)

    def backward(self, top, propagate_down, bottom):
        if len(bottom) == 1:
            if propagate_down[0]:
                bottom[0].diff = top[0].diff
            return
        dy = top[0].diff
        offset = 0
        for b, down in zip(bottom, propagate_down):
            n = b.shape[self._axis]
            if down and kernels.active(dy):
                b.diff = copy_kernels.take(dy, self._axis, offset, n)
            elif down:
                b.diff = dy[_block(self._axis, offset, offset + n)].copy()
            offset += n


@register("Slice")
class Slice(Layer):
    exact_num_bottom = 1
    min_num_top = 1

    def layer_setup(self, bottom, top):
        _check_exclusive(self, self.param.slice_param, "axis", "slice_dim")
        self._points = [int(p) for p in self.param.slice_param.slice_point]

    def reshape(self, bottom, top):
        sp = self.param.slice_param
        axis = _legacy_axis(self, bottom[0], sp, "axis", "slice_dim")
        total = bottom[0].shape[axis]
        if self._points:
            if len(self._points) != len(top) - 1:
                raise self.error("%d slice_point(s) given for %d tops (expected %d)"
                                 % (len(self._points), len(top), len(top) - 1))
            if len(top) > total:
                raise self.error("%d tops cannot slice an axis of size %d"
                                 % (len(top), total))
            sizes, prev = [], 0
            for p in self._points:
                if p <= prev:
                    raise self.error("slice_point values must be increasing and "
                                     "positive (got %s)" % (self._points,))
                sizes.append(p - prev)
                prev = p
            if total - prev < 0:
                raise self.error("slice_point %d exceeds the size %d of axis %d"
                                 % (prev, total, axis))
            sizes.append(total - prev)
        else:
            if total % len(top):
                raise self.error("number of top blobs (%d) should evenly divide "
                                 "input slice axis (%d)" % (len(top), total))
            sizes = [total // len(top)] * len(top)
        self._axis, self._sizes = axis, sizes
        shape = list(bottom[0].shape)
        for t, n in zip(top, sizes):
            shape[axis] = n
            t.reshape(shape)

    def forward(self, bottom, top):
        x = bottom[0].data
        if len(top) == 1:
            top[0].data = x
            return
        offset = 0
        for t, n in zip(top, self._sizes):
            if kernels.active(x):
                t.data = copy_kernels.take(x, self._axis, offset, n)
            else:
                t.data = x[_block(self._axis, offset, offset + n)].copy()
            offset += n

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if len(top) == 1:
            bottom[0].diff = top[0].diff
            return
        xp = bottom[0].xp
        if kernels.active(top[0].diff):
            bottom[0].diff = copy_kernels.concat([t.diff for t in top], self._axis)
            return
        bottom[0].diff = xp.concatenate([t.diff for t in top], axis=self._axis)
