"""PyTorch translations of the float layers other than Convolution and Pooling
(a mixin of bench/_torch_port.TorchNet; benchmark helper only)."""
import numpy as np
import torch
import torch.nn.functional as F

from pycaffe_lowbit.proto import caffe_pb2

P = caffe_pb2


class Unsupported(Exception):
    """The net has a layer this translation does not cover."""


def _t(array):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32)).copy())


class FloatLayers:
    """``_l_<Type>(i, layer, lp)`` returns fn(list of bottom tensors) -> list of
    top tensors (None: the layer adds nothing)."""

    def _l_ReLU(self, i, layer, lp):
        slope = lp.relu_param.negative_slope
        if slope:
            return lambda x: [F.leaky_relu(x[0], slope)]
        return lambda x: [F.relu(x[0])]

    def _l_Sigmoid(self, i, layer, lp):
        return lambda x: [torch.sigmoid(x[0])]

    def _l_TanH(self, i, layer, lp):
        return lambda x: [torch.tanh(x[0])]

    def _l_LRN(self, i, layer, lp):
        q = lp.lrn_param
        size, alpha, beta, k = q.local_size, q.alpha, q.beta, q.k
        if q.norm_region == P.LRNParameter.ACROSS_CHANNELS:
            return lambda x: [F.local_response_norm(x[0], size, alpha, beta, k)]
        pad = (size - 1) // 2

        def within(x):
            sq = F.avg_pool2d(x[0] * x[0], size, 1, pad, ceil_mode=True, count_include_pad=True)
            return [x[0] * (1 + alpha * sq) ** (-beta)]
        return within

    def _l_InnerProduct(self, i, layer, lp):
        ip = lp.inner_product_param
        params = self._params_of(layer)
        w = params[0]
        wq = self._weight_fn(layer, w)
        b = params[1] if ip.bias_term else None
        axis = ip.axis
        transpose = ip.transpose and lp.type == "InnerProduct"   # Binary* ignore it

        def fn(x):
            a = axis if axis >= 0 else x[0].dim() + axis
            xx = x[0].reshape(tuple(x[0].shape[:a]) + (-1,))
            q = wq()
            return [F.linear(xx, q.t() if transpose else q, b)]
        return fn

    def _batch_norm(self, i, layer, lp, scale=None):
        bp = lp.batch_norm_param
        use_global = layer.use_global_stats
        eps = bp.eps
        mean, var, factor = (layer.blobs[k].data for k in range(3))
        f = 0.0 if float(factor.reshape(-1)[0]) == 0 else 1.0 / float(factor.reshape(-1)[0])
        run_mean = _t(mean * f)
        run_var = _t(var * f)
        self.register_buffer("rm%d" % i, run_mean)
        self.register_buffer("rv%d" % i, run_var)
        gamma = beta = None
        if scale is not None:
            slayer, sidx = scale
            sp = self._params_of(slayer)
            gamma = sp[0]
            beta = sp[1] if len(sp) > 1 else None
        maf = bp.moving_average_fraction

        def fn(x):
            return [F.batch_norm(x[0], run_mean, run_var, gamma, beta,
                                 training=not use_global, momentum=1 - maf, eps=eps)]
        return fn

    def _l_BatchNorm(self, i, layer, lp):
        return self._batch_norm(i, layer, lp)

    def _bcast(self, bshape, axis, pshape):
        axis = axis if axis >= 0 else len(bshape) + axis
        return (1,) * axis + tuple(pshape) + (1,) * (len(bshape) - axis - len(pshape))

    def _l_Scale(self, i, layer, lp):
        sp = lp.scale_param
        params = self._params_of(layer)
        bshape = self.net._blobs[self.net._bottom_id_vecs[i][0]].shape
        two = len(lp.bottom) == 2
        if two:
            sshape = self.net._blobs[self.net._bottom_id_vecs[i][1]].shape
            view = self._bcast(bshape, sp.axis, sshape)
            bias = params[0] if sp.bias_term else None
        else:
            view = self._bcast(bshape, sp.axis, layer.blobs[0].shape)
            bias = params[1] if sp.bias_term else None
        gamma = None if two else params[0]

        def fn(x):
            s = (x[1] if two else gamma).reshape(view)
            y = x[0] * s
            if bias is not None:
                y = y + bias.reshape(view)
            return [y]
        return fn

    def _l_Bias(self, i, layer, lp):
        bp = lp.bias_param
        bshape = self.net._blobs[self.net._bottom_id_vecs[i][0]].shape
        two = len(lp.bottom) == 2
        if two:
            view = self._bcast(bshape, bp.axis,
                               self.net._blobs[self.net._bottom_id_vecs[i][1]].shape)
            return lambda x: [x[0] + x[1].reshape(view)]
        b = self._params_of(layer)[0]
        view = self._bcast(bshape, bp.axis, layer.blobs[0].shape)
        return lambda x: [x[0] + b.reshape(view)]

    def _l_Eltwise(self, i, layer, lp):
        ep = lp.eltwise_param
        if ep.operation == P.EltwiseParameter.SUM:
            coeff = list(ep.coeff) or [1.0] * len(lp.bottom)

            def fn(x):
                y = x[0] if coeff[0] == 1 else x[0] * coeff[0]
                for c, xx in zip(coeff[1:], x[1:]):
                    y = y + (xx if c == 1 else xx * c)
                return [y]
            return fn
        if ep.operation == P.EltwiseParameter.PROD:
            def prod(x):
                y = x[0]
                for xx in x[1:]:
                    y = y * xx
                return [y]
            return prod

        def mx(x):
            y = x[0]
            for xx in x[1:]:
                y = torch.maximum(y, xx)
            return [y]
        return mx

    def _l_Concat(self, i, layer, lp):
        cp = lp.concat_param
        axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
        return lambda x: [torch.cat(x, axis)]

    def _l_Slice(self, i, layer, lp):
        sp = lp.slice_param
        axis = sp.slice_dim if sp.HasField("slice_dim") else sp.axis
        sizes = [self.net._blobs[k].shape[axis] for k in self.net._top_id_vecs[i]]
        return lambda x: list(torch.split(x[0], sizes, axis))

    def _l_Split(self, i, layer, lp):
        n = len(lp.top)
        return lambda x: [x[0]] * n

    def _shape_like_top(self, i):
        shape = self.net._blobs[self.net._top_id_vecs[i][0]].shape
        return lambda x: [x[0].reshape(shape)]

    def _l_Flatten(self, i, layer, lp):
        return self._shape_like_top(i)

    def _l_Reshape(self, i, layer, lp):
        return self._shape_like_top(i)

    def _l_Dropout(self, i, layer, lp):
        p = lp.dropout_param.dropout_ratio
        return lambda x: [F.dropout(x[0], p, training=self.train_mode)]

    def _l_Softmax(self, i, layer, lp):
        axis = lp.softmax_param.axis
        return lambda x: [F.softmax(x[0], axis)]

    def _l_SoftmaxWithLoss(self, i, layer, lp):
        axis = lp.softmax_param.axis
        lpar = lp.loss_param
        ignore = lpar.ignore_label if lpar.HasField("ignore_label") else None
        if lpar.HasField("normalization"):
            mode = lpar.normalization
        elif lpar.HasField("normalize"):
            mode = P.LossParameter.VALID if lpar.normalize else P.LossParameter.BATCH_SIZE
        else:
            mode = P.LossParameter.VALID
        two_tops = len(lp.top) > 1

        def fn(x):
            s = x[0]
            a = axis if axis >= 0 else s.dim() + axis
            outer = int(np.prod(s.shape[:a])) if a else 1
            c = s.shape[a]
            inner = s.numel() // (outer * c)
            logits = s.reshape(outer, c, inner)
            labels = x[1].reshape(outer, inner).long()
            if ignore is not None:
                total = F.cross_entropy(logits, labels, reduction="sum", ignore_index=ignore)
                valid = int((labels != ignore).sum())
            else:
                total = F.cross_entropy(logits, labels, reduction="sum")
                valid = outer * inner
            norm = {P.LossParameter.FULL: outer * inner, P.LossParameter.VALID: valid,
                    P.LossParameter.BATCH_SIZE: outer, P.LossParameter.NONE: 1}[mode]
            out = [total / max(1, norm)]
            if two_tops:
                out.append(F.softmax(s, a))
            return out
        return fn

    def _l_EuclideanLoss(self, i, layer, lp):
        return lambda x: [((x[0] - x[1]) ** 2).sum() / (2 * x[0].shape[0])]

    def _l_Accuracy(self, i, layer, lp):
        return lambda x: None

    _l_Silence = _l_Accuracy
