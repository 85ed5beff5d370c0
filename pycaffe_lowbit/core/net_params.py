"""The learnable-parameter bookkeeping of a Net, as Caffe's Net::AppendParam
and ShareWeights: which param blobs the solver updates (``learnable_params``),
with their lr and decay multipliers, and which are shared by ParamSpec name.

Per param blob of the net (``_params``, in layer order): its owner (-1, or
the index of the param whose name it shares), its (layer, blob) position and
its index into ``learnable_params``. Sharing (STRICT: equal shapes; PERMISSIVE:
equal counts) makes a layer use the owner's Blob, so one update serves both;
an lr_mult or decay_mult given on several sharers must agree.
"""
import numpy as np

from ..proto import caffe_pb2
from .net_graph import NetDefinitionError


def _glorot_lr_scale(spec, blob):
    """BinaryNet's W_LR_scale when ``spec.glorot_lr_scale`` (else 1):
    1 / sqrt(1.5 / (fan_in + fan_out)), with fan_in + fan_out = (shape[0] +
    shape[1]) * prod(shape[2:]) (C k + O k for a conv weight, K + N for an
    inner product)."""
    if not spec.glorot_lr_scale:
        return 1.0
    shape = tuple(blob.shape) + (1, 1)
    fans = (shape[0] + shape[1]) * int(np.prod(blob.shape[2:], dtype=np.int64))
    return float(1.0 / np.sqrt(1.5 / fans))



class NetParams:
    """Mixin of ``Net``: registering, sharing and clearing its params."""

    def _append_param(self, layer_id, blob_index, spec):
        layer = self.layers[layer_id]
        net_id = len(self._params)
        self._params.append(layer.blobs[blob_index])
        self._param_layer.append((layer_id, blob_index))
        name = spec.name
        if not name or name not in self._param_names:
            if name:
                self._param_names[name] = net_id
            self._param_owner.append(-1)
            self._learnable_index.append(len(self.learnable_params))
            self.learnable_params.append(layer.blobs[blob_index])
            self.params_lr.append(spec.lr_mult * _glorot_lr_scale(spec, layer.blobs[blob_index]))
            self.params_weight_decay.append(spec.decay_mult)
            self.params_clip_data.append(spec.clip_data)
            self._has_lr.append(spec.HasField("lr_mult"))
            self._has_decay.append(spec.HasField("decay_mult"))
            return
        owner = self._param_names[name]
        self._param_owner.append(owner)
        owner_blob = self._params[owner]
        mine = layer.blobs[blob_index]
        owner_layer = self._layer_names[self._param_layer[owner][0]]
        strict = spec.share_mode != caffe_pb2.ParamSpec.PERMISSIVE
        if (strict and owner_blob.shape != mine.shape) or owner_blob.count != mine.count:
            raise NetDefinitionError(
                "cannot share param '%s' owned by layer '%s' with layer '%s'; %s "
                "mismatch. Owner layer param shape is %s; sharing layer shape is %s"
                % (name, owner_layer, self._layer_names[layer_id],
                   "shape" if strict else "count", owner_blob.shape, mine.shape))
        learnable = self._learnable_index[owner]
        self._learnable_index.append(learnable)
        for has, value, kind, values, flags in (
                (spec.HasField("lr_mult"), spec.lr_mult, "lr_mult",
                 self.params_lr, self._has_lr),
                (spec.HasField("decay_mult"), spec.decay_mult, "decay_mult",
                 self.params_weight_decay, self._has_decay)):
            if not has:
                continue
            if flags[learnable] and values[learnable] != value:
                raise NetDefinitionError("shared param '%s' has mismatched %s"
                                         % (name, kind))
            values[learnable] = value
            flags[learnable] = True

    def _share_weights(self):
        """Shared params use the owner's arrays (data and diff), as Caffe's
        ShareWeights; with equal shapes the layer holds the owner's Blob itself."""
        for net_id, owner in enumerate(self._param_owner):
            if owner < 0:
                continue
            layer_id, k = self._param_layer[net_id]
            owner_blob = self._params[owner]
            mine = self.layers[layer_id].blobs[k]
            if mine.shape == owner_blob.shape:
                self.layers[layer_id].blobs[k] = owner_blob
            else:
                mine.share_data(owner_blob)
                mine.share_diff(owner_blob)
            self._params[net_id] = self.layers[layer_id].blobs[k]

    def clear_param_diffs(self):
        for p in self.learnable_params:
            p.fill_diff(0)

    def share_with(self, other):
        """Use ``other``'s param arrays for layers of the same name (Caffe's
        ShareTrainedLayersWith)."""
        for name, src_layer in zip(other._layer_names, other.layers):
            if name not in self._layer_names:
                continue
            dst = self.layers[self._layer_names.index(name)]
            if len(dst.blobs) != len(src_layer.blobs):
                raise NetDefinitionError("incompatible number of blobs for layer '%s'" % name)
            for k, (d, s) in enumerate(zip(dst.blobs, src_layer.blobs)):
                if d.shape != s.shape:
                    raise NetDefinitionError(
                        "cannot share param %d of layer '%s': shape %s vs %s"
                        % (k, name, d.shape, s.shape))
                dst.blobs[k] = s
        self._rebuild_param_lists()

    def _rebuild_param_lists(self):
        for net_id, (layer_id, k) in enumerate(self._param_layer):
            self._params[net_id] = self.layers[layer_id].blobs[k]
        for net_id, learnable in enumerate(self._learnable_index):
            if self._param_owner[net_id] < 0:
                self.learnable_params[learnable] = self._params[net_id]
