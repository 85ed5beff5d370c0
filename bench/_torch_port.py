"""Translate a pycaffe_lowbit Net into an equivalent PyTorch (CPU) computation.

Benchmark helper only (bench/bench_cpu.py); torch is never a dependency of the
package. ``TorchNet(net)`` walks the Net's layers in order, keeps one tensor per
Caffe blob name (an in-place Caffe layer simply rebinds the name), and copies
the Net's current parameter values. Sharing between layers (one Blob) becomes
one torch Parameter.

Backward does the same work as ``caffe time`` / ``lowbit-caffe time``:

* a bottom that Caffe does not back-propagate into (``bottom_need_backward``
  false) is detached, so no input gradient is computed for it;
* a parameter gets ``requires_grad`` iff the layer's ``param_propagate_down``;
* the gradient seed is sum_k loss_weight_k * loss_top_k, plus a zero seed on the
  tops of parametrised layers that no loss reaches (a net with no loss, such as
  a deploy net: Caffe still computes their parameter gradients, from zero top
  diffs, and nothing else).

Layers: Input, DummyData (values copied), Convolution, Deconvolution,
Pooling (MAX/AVE, Caffe's ceil rule, global), ReLU (leaky), Sigmoid, TanH, LRN
(ACROSS_CHANNELS and WITHIN_CHANNEL), InnerProduct (axis, transpose),
BatchNorm (fused with a following Scale into one ``F.batch_norm`` where that
Scale is its only consumer), Scale, Bias, Eltwise (SUM/PROD/MAX), Concat, Slice,
Split, Flatten, Reshape, Dropout, Softmax, SoftmaxWithLoss, EuclideanLoss,
Accuracy and Silence (skipped). Anything else raises ``Unsupported``.
"""
import numpy as np
import torch
import torch.nn.functional as F

from pycaffe_lowbit.proto import caffe_pb2

P = caffe_pb2


class Unsupported(Exception):
    """The net has a layer this translation does not cover."""


def _t(array):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(array, dtype=np.float32)).copy())


def _hw(repeated, h, w, has_h, default, n=2):
    if has_h:
        return (int(h), int(w))
    if len(repeated) == 0:
        return (default,) * n
    if len(repeated) == 1:
        return (int(repeated[0]),) * n
    return tuple(int(v) for v in repeated[:n])


def _caffe_pool_out(size, k, s, p):
    out = int(np.ceil((size + 2 * p - k) / float(s))) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


class TorchNet(torch.nn.Module):
    def __init__(self, net, fuse_bn_scale=True):
        super().__init__()
        self.net = net
        self.params_list = torch.nn.ParameterList()
        self._blob_params = {}      # id(Blob) -> Parameter (sharing)
        self._ops = []              # (layer index, name, type, fn, bottoms, tops)
        self.train_mode = True      # Dropout active (TRAIN)
        layers = net.layers
        lps = net._param.layer
        names = net._blob_names
        consumers = {}
        for i, ids in enumerate(net._bottom_id_vecs):
            for b in ids:
                consumers.setdefault(b, []).append(i)
        self._consumers = consumers
        skip = set()
        for i, (layer, lp) in enumerate(zip(layers, lps)):
            if i in skip:
                continue
            bottoms = [names[k] for k in net._bottom_id_vecs[i]]
            tops = [names[k] for k in net._top_id_vecs[i]]
            fused = None
            if fuse_bn_scale and lp.type == "BatchNorm" and i + 1 < len(layers):
                fused = self._fusable_scale(i)
            if fused is not None:
                skip.add(fused)
                fn = self._batch_norm(i, layer, lp, scale=(layers[fused], fused))
                tops = [names[k] for k in net._top_id_vecs[fused]]
                self._ops.append((i, lp.name + "+" + lps[fused].name, "BatchNorm+Scale",
                                  fn, bottoms, tops, [fused]))
                continue
            fn = self._build(i, layer, lp)
            self._ops.append((i, lp.name, lp.type, fn, bottoms, tops, []))
        # Tops whose parameter gradients Caffe computes without a loss reaching them.
        self._zero_seed_tops = []
        for i, layer in enumerate(layers):
            if not net._layer_need_backward[i] and any(layer.param_propagate_down):
                self._zero_seed_tops.append(i)

    # -- helpers ---------------------------------------------------------------
    def _param(self, blob, requires_grad):
        key = id(blob)
        if key not in self._blob_params:
            p = torch.nn.Parameter(_t(blob.data), requires_grad=bool(requires_grad))
            self._blob_params[key] = p
            self.params_list.append(p)
        return self._blob_params[key]

    def _params_of(self, layer):
        return [self._param(b, layer.param_propagate_down[k] if k < len(layer.param_propagate_down)
                            else True) for k, b in enumerate(layer.blobs)]

    def _fusable_scale(self, i):
        """Index of the Scale that may be folded into BatchNorm i, or None: the
        next layer, a one-bottom Scale over channels reading the BN's top, and
        either in place or the only reader of that top."""
        net = self.net
        lp_next = net._param.layer[i + 1]
        if lp_next.type != "Scale" or len(lp_next.bottom) != 1:
            return None
        top_id = net._top_id_vecs[i][0]
        if net._bottom_id_vecs[i + 1] != [top_id]:
            return None
        later = [c for c in self._consumers.get(top_id, []) if c > i + 1]
        if later and net._top_id_vecs[i + 1] != [top_id]:
            return None
        sp = lp_next.scale_param
        if sp.axis not in (1, -3) or sp.num_axes != 1:
            return None
        if net._blobs[top_id].num_axes < 2:
            return None
        return i + 1

    def _detach_mask(self, i):
        return [not need for need in self.net._bottom_need_backward[i]]

    # -- layer builders ----------------------------------------------------------
    def _build(self, i, layer, lp):
        t = lp.type
        builder = getattr(self, "_l_" + t, None)
        if builder is None:
            raise Unsupported("no PyTorch translation for layer '%s' of type %s" % (lp.name, t))
        return builder(i, layer, lp)

    def _l_Input(self, i, layer, lp):
        return None  # inputs come from the Net's blobs

    _l_DummyData = _l_Input

    def _l_Convolution(self, i, layer, lp, transpose=False):
        cp = lp.convolution_param
        params = self._params_of(layer)
        w = params[0]
        b = params[1] if cp.bias_term else None
        nsp = w.dim() - 2
        if cp.axis not in (1, -(nsp + 2)):
            raise Unsupported("Convolution axis %d" % cp.axis)
        stride = _hw(cp.stride, cp.stride_h, cp.stride_w,
                     cp.HasField("stride_h") or cp.HasField("stride_w"), 1, nsp)
        pad = _hw(cp.pad, cp.pad_h, cp.pad_w, cp.HasField("pad_h") or cp.HasField("pad_w"), 0, nsp)
        dil = _hw(cp.dilation, 0, 0, False, 1, nsp)
        g = cp.group
        if transpose:
            fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[nsp]
            return lambda x: [fn(x[0], w, b, stride, pad, 0, g, dil)]
        fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nsp]
        return lambda x: [fn(xx, w, b, stride, pad, dil, g) for xx in x]

    def _l_Deconvolution(self, i, layer, lp):
        return self._l_Convolution(i, layer, lp, transpose=True)

    def _l_Pooling(self, i, layer, lp):
        pp = lp.pooling_param
        shape = self.net._blobs[self.net._bottom_id_vecs[i][0]].shape
        H, W = shape[2], shape[3]
        if pp.global_pooling:
            k, s, p = (H, W), (1, 1), (0, 0)
        else:
            k = _hw([pp.kernel_size] if pp.HasField("kernel_size") else [], pp.kernel_h,
                    pp.kernel_w, pp.HasField("kernel_h"), None)
            s = _hw([pp.stride], pp.stride_h, pp.stride_w, pp.HasField("stride_h"), 1)
            p = _hw([pp.pad], pp.pad_h, pp.pad_w, pp.HasField("pad_h"), 0)
        want = (_caffe_pool_out(H, k[0], s[0], p[0]), _caffe_pool_out(W, k[1], s[1], p[1]))
        if pp.pool == P.PoolingParameter.MAX:
            def fn(x):
                return [F.max_pool2d(x[0], k, s, p, ceil_mode=True)]
        elif pp.pool == P.PoolingParameter.AVE:
            def fn(x):
                return [F.avg_pool2d(x[0], k, s, p, ceil_mode=True, count_include_pad=True)]
        else:
            raise Unsupported("Pooling method STOCHASTIC")

        def checked(x):
            y = fn(x)
            if tuple(y[0].shape[2:]) != want:
                raise Unsupported("pooling '%s': torch gives %s, Caffe %s"
                                  % (lp.name, tuple(y[0].shape[2:]), want))
            return y
        return checked

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
        b = params[1] if ip.bias_term else None
        axis = ip.axis
        transpose = ip.transpose

        def fn(x):
            a = axis if axis >= 0 else x[0].dim() + axis
            xx = x[0].reshape(tuple(x[0].shape[:a]) + (-1,))
            return [F.linear(xx, w.t() if transpose else w, b)]
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

    # -- running -----------------------------------------------------------------
    def inputs_from_net(self):
        """The Net's input-blob values (Input / DummyData tops) as tensors."""
        net = self.net
        out = {}
        for i, lp in enumerate(net._param.layer):
            if lp.type in ("Input", "DummyData"):
                for k in net._top_id_vecs[i]:
                    out[net._blob_names[k]] = _t(net._blobs[k].data)
        return out

    def forward(self, inputs, timings=None):
        """Run every layer; returns (blobs dict, loss tensor or None, seed list).
        ``timings`` (a dict) collects forward seconds per op name."""
        import time
        net = self.net
        blobs = dict(inputs)
        losses = []
        seeds = []
        zero_seed = set(self._zero_seed_tops)
        lws = {}
        for i, layer in enumerate(net.layers):
            lws[i] = layer.loss_weights
        for (i, name, typ, fn, bottoms, tops, fused) in self._ops:
            if fn is None:
                continue
            detach = self._detach_mask(i)
            xs = []
            for j, b in enumerate(bottoms):
                if b not in blobs:
                    raise Unsupported("blob '%s' (bottom of '%s') has no PyTorch value"
                                      % (b, name))
                v = blobs[b]
                xs.append(v.detach() if detach[j] else v)
            t0 = time.perf_counter() if timings is not None else 0
            ys = fn(xs)
            if timings is not None:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            if ys is None:
                continue
            for t, y in zip(tops, ys):
                blobs[t] = y
            last = fused[-1] if fused else i
            for j, y in enumerate(ys):
                w = lws[last][j] if j < len(lws[last]) else 0
                if w:
                    losses.append(y.sum() * w)
            for idx in [i] + fused:
                if idx in zero_seed:
                    seeds.extend(y for y in ys if y.requires_grad)
        loss = None
        if losses:
            loss = losses[0]
            for l_ in losses[1:]:
                loss = loss + l_
        return blobs, loss, seeds

    def backward(self, loss, seeds):
        tensors, grads = [], []
        if loss is not None and loss.requires_grad:
            tensors.append(loss)
            grads.append(torch.ones_like(loss))
        for s in seeds:
            tensors.append(s)
            grads.append(torch.zeros_like(s))
        if tensors:
            torch.autograd.backward(tensors, grads)

    def zero_grad_params(self):
        for p in self.params_list:
            p.grad = None

    def grad_of(self, blob):
        """The gradient of the torch Parameter for our param Blob (or None)."""
        p = self._blob_params.get(id(blob))
        return None if p is None or p.grad is None else p.grad.numpy()
