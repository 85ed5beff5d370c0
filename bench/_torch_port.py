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
Accuracy and Silence (skipped) in bench/_torch_layers.py; the forks' layers
(BinaryConvolution, BinaryInnerProduct, TernaryConvolution, TernaryInnerProduct,
with SQ's stochastic selection, and Quant) in bench/_torch_lowbit.py. Anything
else raises ``Unsupported``.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _torch_layers import FloatLayers, P, Unsupported, _t  # noqa: E402
from _torch_lowbit import LowbitLayers  # noqa: E402

__all__ = ["TorchNet", "Unsupported"]


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


class TorchNet(FloatLayers, LowbitLayers, torch.nn.Module):
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
        wq = self._weight_fn(layer, w)
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
            return lambda x: [fn(x[0], wq(), b, stride, pad, 0, g, dil)]
        fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nsp]

        def conv(x):
            q = wq()
            return [fn(xx, q, b, stride, pad, dil, g) for xx in x]
        return conv

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

    def sgd(self, solver_param):
        """torch.optim.SGD doing the update of our SGD solver: per blob
        lr = base_lr * lr_mult, weight_decay = weight_decay * decay_mult,
        the solver's momentum (v = m v + g + wd w; w -= lr v: the same work)."""
        sp = solver_param
        groups = []
        for layer, lp in zip(self.net.layers, self.net._param.layer):
            for k, blob in enumerate(layer.blobs):
                p = self._blob_params.get(id(blob))
                if p is None or not p.requires_grad:
                    continue
                spec = lp.param[k] if k < len(lp.param) else None
                lr = sp.base_lr * (spec.lr_mult if spec is not None else 1.0)
                wd = sp.weight_decay * (spec.decay_mult if spec is not None else 1.0)
                groups.append({"params": [p], "lr": lr, "weight_decay": wd})
        return torch.optim.SGD(groups, lr=sp.base_lr, momentum=sp.momentum)


def agreement(net, tnet, run_ours):
    """One forward and backward of ours (``run_ours(net)``) and of ``tnet``,
    Dropout off on both sides and SQ's row selection shared; returns
    [(what, max |ours - torch| / max |torch|)] for the logits (the input of the
    last non-Accuracy layer), the net's outputs and the first weight gradient."""
    saved = []
    for layer in net.layers:
        if layer.type == "Dropout":
            saved.append((layer, layer.phase))
            layer.phase = P.TEST
    tnet.train_mode = False
    tnet.share_selection = True
    try:
        worst_layer = _layerwise(net, tnet)
        net.clear_param_diffs()
        run_ours(net)
        tnet.zero_grad_params()
        blobs, loss, seeds = tnet(tnet.inputs_from_net())
        tnet.backward(loss, seeds)
    finally:
        for layer, phase in saved:
            layer.phase = phase
        tnet.train_mode = True
        tnet.share_selection = False

    names = []
    last = len(net.layers) - 1
    while last > 0 and net._param.layer[last].type in ("Accuracy", "Silence"):
        last -= 1
    if net._bottom_id_vecs[last]:
        names.append(net._blob_names[net._bottom_id_vecs[last][0]])
    names += [n for n in net.outputs if n not in names]
    out = []
    for name in names:
        if blobs.get(name) is None:
            continue
        ours = net.blob_by_name(name).data
        theirs = blobs[name].detach().numpy()
        if ours.shape != theirs.shape and ours.size == theirs.size:
            theirs = theirs.reshape(ours.shape)
        out.append((name, rel(ours, theirs) if ours.shape == theirs.shape else float("nan")))
    if loss is not None:
        for layer in net.layers:
            if layer.blobs and any(layer.param_propagate_down):
                g = tnet.grad_of(layer.blobs[0])
                if g is not None:
                    out.append(("d(%s.w)" % layer.name, rel(layer.blobs[0].diff, g)))
                break
    return worst_layer, out


def rel(a, b):
    """max |a - b| / max |b| (max |a - b| when b is all zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64).reshape(a.shape)
    if not b.size:
        return 0.0
    scale, d = np.abs(b).max(), np.abs(a - b).max()
    return float(d / scale) if scale > 0 else float(d)


def _layerwise(net, tnet):
    """Forward only, layer by layer: each PyTorch op is fed our bottoms (copied
    before our layer runs, as it may be in place) and its tops are compared with
    ours. Returns (op name, worst rel) over the ops. Unlike the end-to-end check,
    a quantizer threshold that float rounding crosses in one side's input does
    not carry into the next layers."""
    worst, done = ("-", 0.0), -1
    with torch.no_grad():
        for (i, name, typ, fn, bottoms, tops, fused) in tnet._ops:
            if done < i - 1:
                net.forward_from_to(done + 1, i - 1)
            xs = [_t(net.blob_by_name(b).data) for b in bottoms]
            done = fused[-1] if fused else i
            net.forward_from_to(i, done)
            ys = fn(xs) if fn is not None else None
            for top, y in zip(tops, ys or []):
                v = rel(net.blob_by_name(top).data, y.numpy())
                if not v <= worst[1]:
                    worst = (name, v)
    return worst
