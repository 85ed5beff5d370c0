"""Eltwise: an elementwise operation over two or more bottoms of one shape.

PROD  y = prod_i x_i;  dx_i = dy * prod_{j != i} x_j   (stable_prod_grad, default)
                       dx_i = dy * y / x_i             (stable_prod_grad: false)
SUM   y = sum_i c_i x_i  (coeff c, default all 1);  dx_i = c_i dy
MAX   y = max_i x_i;  dx_i = dy where bottom i won, else 0.  Ties follow Caffe's
      CPU code: bottom 1 beats bottom 0 unless x_0 > x_1, and a later bottom
      (index >= 2) wins only when strictly greater.
"""
from .. import kernels
from ..kernels import eltwise as eltwise_kernels
from ..proto import caffe_pb2
from .base import Layer
from .registry import register

_Op = caffe_pb2.EltwiseParameter


@register("Eltwise")
class Eltwise(Layer):
    min_num_bottom = 2
    exact_num_top = 1

    def layer_setup(self, bottom, top):
        ep = self.param.eltwise_param
        if len(ep.coeff) not in (0, len(bottom)):
            raise self.error("Eltwise layer takes one coefficient per bottom blob "
                             "(%d coeff for %d bottoms)" % (len(ep.coeff), len(bottom)))
        if ep.operation == _Op.PROD and len(ep.coeff):
            raise self.error("Eltwise layer only takes coefficients for summation "
                             "(coeff given with operation PROD)")
        self.op = ep.operation
        self.coeffs = list(ep.coeff) if len(ep.coeff) else [1.0] * len(bottom)
        self.stable_prod_grad = ep.stable_prod_grad
        self._mask = None

    def reshape(self, bottom, top):
        for i, b in enumerate(bottom[1:], 1):
            if b.shape != bottom[0].shape:
                raise self.error("all bottoms must have the same shape: bottom[0] %s, "
                                 "bottom[%d] %s" % (bottom[0].shape, i, b.shape))
        top[0].reshape(bottom[0].shape)

    def forward(self, bottom, top):
        xs = [b.data for b in bottom]
        if kernels.active(xs[0]) and self.op in (_Op.PROD, _Op.SUM, _Op.MAX):
            if self.op == _Op.MAX:
                top[0].data, self._mask = eltwise_kernels.maximum(xs)
            else:
                top[0].data = (eltwise_kernels.product(xs) if self.op == _Op.PROD
                               else eltwise_kernels.total(xs, self.coeffs))
            return
        if self.op == _Op.PROD:
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y *= x
        elif self.op == _Op.SUM:
            if self.coeffs[0] == 1 and self.coeffs[1] == 1:
                y, rest = xs[0] + xs[1], 2   # one pass: the bits of a copy, then +=
            else:
                y = self._coeff(0) * xs[0] if self.coeffs[0] != 1 else xs[0].copy()
                rest = 1
            for i, x in enumerate(xs[rest:], rest):
                y += self._coeff(i) * x if self.coeffs[i] != 1 else x
        elif self.op == _Op.MAX:
            xp = bottom[0].xp
            first = xs[0] > xs[1]
            y = xp.where(first, xs[0], xs[1])
            mask = xp.where(first, 0, 1).astype(xp.int32)
            for i, x in enumerate(xs[2:], 2):
                later = x > y
                y = xp.where(later, x, y)
                mask[later] = i
            self._mask = mask
        else:
            raise self.error("unknown elementwise operation %d" % self.op)
        top[0].data = y

    def _kernel_grad(self, i, dy, bottom, top):
        """The kernel path of bottom i's gradient (a new array)."""
        if self.op == _Op.SUM:
            return eltwise_kernels.scaled(dy, self.coeffs[i])
        if self.op == _Op.MAX:
            return eltwise_kernels.max_grad(dy, self._mask, i)
        if self.stable_prod_grad:
            return eltwise_kernels.product([o.data for j, o in enumerate(bottom) if j != i], dy)
        return eltwise_kernels.quotient(top[0].data, bottom[i].data, dy)

    def _coeff(self, i):
        return self.dtype.type(self.coeffs[i])

    def backward(self, top, propagate_down, bottom):
        dy = top[0].diff
        for i, (b, down) in enumerate(zip(bottom, propagate_down)):
            if not down:
                continue
            if kernels.active(dy):
                b.diff = self._kernel_grad(i, dy, bottom, top)
            elif self.op == _Op.PROD:
                if self.stable_prod_grad:
                    others = [o.data for j, o in enumerate(bottom) if j != i]
                    g = others[0].copy()
                    for o in others[1:]:
                        g *= o
                else:
                    g = top[0].data / b.data
                b.diff = g * dy
            elif self.op == _Op.SUM:
                b.diff = dy.copy() if self.coeffs[i] == 1 else self._coeff(i) * dy
            else:
                b.diff = dy * (self._mask == i).astype(dy.dtype)
