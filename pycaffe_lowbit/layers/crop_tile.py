"""Crop and Tile: copy a block of the bottom, or repeat the bottom, along axes.

Crop   bottoms: x (any shape), ref (at least as many axes). Top: x's shape with
       every axis i >= ``axis`` taken from ref. Axis i >= ``axis`` starts at
       offset o_i: one ``offset`` for all of them, one per cropped axis, or none
       (0). y = x[..., o_a : o_a + ref_a, ...];  dx = dy placed at those
       positions, 0 elsewhere. No gradient to ref (its values are unused).
Tile   y = x repeated ``tiles`` times along ``axis`` (the whole block of axes
       [axis, end) is repeated: top dim axis = tiles * bottom dim axis);
       dx = sum of dy over the copies.
On the kernel path (GPU, or emulated) both run as copy.cu's kernels
(``kernels.copy``), each element of the output written once.
"""
from .. import kernels
from ..kernels import copy as copy_kernels
from .base import Layer
from .registry import register
from .shape_ops import canonical_axis


@register("Crop")
class Crop(Layer):
    exact_num_bottom = 2
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        cp = self.param.crop_param
        n = bottom[0].num_axes
        self.start_axis = canonical_axis(self, bottom[0], cp.axis)
        self.offset_param = [int(o) for o in cp.offset]
        if len(self.offset_param) > 1 and self.start_axis + len(self.offset_param) != n:
            raise self.error("number of offset values specified (%d) must be equal to "
                             "the number of dimensions following axis %d of a %d-axis "
                             "bottom" % (len(self.offset_param), self.start_axis, n))

    def reshape(self, bottom, top):
        x, ref = bottom
        if ref.num_axes < x.num_axes:
            raise self.error("the reference bottom %s needs at least as many axes as "
                             "the data bottom %s" % (ref.shape, x.shape))
        shape, offsets = list(x.shape), [0] * x.num_axes
        for i in range(self.start_axis, x.num_axes):
            if len(self.offset_param) == 1:
                off = self.offset_param[0]
            elif self.offset_param:
                off = self.offset_param[i - self.start_axis]
            else:
                off = 0
            if off < 0 or x.shape[i] - off < ref.shape[i]:
                raise self.error("the crop for dimension %d is out-of-bounds with size "
                                 "%d and offset %d (bottom size %d)"
                                 % (i, ref.shape[i], off, x.shape[i]))
            shape[i], offsets[i] = ref.shape[i], off
        self.offsets = offsets
        self._index = tuple(slice(o, o + s) for o, s in zip(offsets, shape))
        top[0].reshape(shape)

    def forward(self, bottom, top):
        if kernels.active(bottom[0].data):
            top[0].data = copy_kernels.crop_forward(bottom[0].data, self.offsets, top[0].shape)
            return
        top[0].data = bottom[0].data[self._index].copy()

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        b = bottom[0]
        if kernels.active(top[0].diff):
            b.diff = copy_kernels.crop_backward(top[0].diff, self.offsets, b.shape)
            return
        dx = b.xp.zeros(b.shape, b.dtype)
        dx[self._index] = top[0].diff
        b.diff = dx

    def allow_force_backward(self, bottom_index):
        return bottom_index != 1


@register("Tile")
class Tile(Layer):
    exact_num_bottom = 1
    exact_num_top = 1

    def reshape(self, bottom, top):
        tp = self.param.tile_param
        b = bottom[0]
        self.axis = canonical_axis(self, b, tp.axis)
        if not tp.HasField("tiles"):
            raise self.error("Number of tiles must be specified (tile_param.tiles)")
        if tp.tiles <= 0:
            raise self.error("Number of tiles must be positive (got %d)" % tp.tiles)
        self.tiles = int(tp.tiles)
        self.outer = b.count_range(0, self.axis)
        self.inner = b.count_range(self.axis)
        shape = list(b.shape)
        shape[self.axis] *= self.tiles
        top[0].reshape(shape)

    def forward(self, bottom, top):
        if kernels.active(bottom[0].data):
            top[0].data = copy_kernels.tile_forward(bottom[0].data, self.tiles, self.axis)
            return
        x = bottom[0].data.reshape(self.outer, 1, self.inner)
        xp = bottom[0].xp
        y = xp.broadcast_to(x, (self.outer, self.tiles, self.inner))
        top[0].data = xp.ascontiguousarray(y).reshape(top[0].shape)

    def backward(self, top, propagate_down, bottom):
        if not propagate_down[0]:
            return
        if kernels.active(top[0].diff):
            bottom[0].diff = copy_kernels.tile_backward(top[0].diff, self.tiles, self.axis)
            return
        dy = top[0].diff.reshape(self.outer, self.tiles, self.inner)
        bottom[0].diff = dy.sum(axis=1).reshape(bottom[0].shape)
