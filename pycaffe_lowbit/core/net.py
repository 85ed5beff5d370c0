"""Net: layers wired by named blobs, with Caffe's construction and passes.

Construction follows Caffe's Net::Init:
  NetParameter -> legacy upgrade -> NetState filter -> Split insertion ->
  for each layer: bottoms looked up, tops created (same name as bottom j at
  top j = in place), ``setup``, params registered (sharing by ParamSpec name),
  -> which layers need backward: a layer does when a bottom needs it or a param
  has lr_mult != 0, and only if it contributes to the loss; ``force_backward``
  then turns on every bottom whose layer allows it.

``forward_from_to`` runs layers i..j (each reshapes first) and returns the loss
sum_k <top_k.data, top_k.diff> over loss tops, whose diff holds the loss weight.
``backward_from_to`` runs ``backward`` from j down to i for the layers that need it.
Where a range holds a BatchNorm + Scale (+ ReLU) group in place, it runs as one
fused pass each way (``net_fusion.FusedPasses``).

The param bookkeeping (learnable params, sharing) is ``net_params.NetParams``;
weights files and the model argument are ``net_weights.NetWeights``; pycaffe's
views (``net.blobs``, ``net.params``...) are ``pycaffe/pycaffe.py``'s subclass.
"""
import logging

import numpy as np

from ..layers import create_layer
from ..layers.base import LayerSetupError
from ..proto import caffe_pb2
from . import backend
from .blob import Blob
from .errors import LayerMemoryError, check_file, is_user_error, layer_memory_error
from .net_fusion import FusedPasses
from .net_graph import NetDefinitionError, filter_net, insert_splits
from .net_params import NetParams
from .net_weights import TEST, TRAIN, NetWeights, _load_net_param, _parse_net_args

__all__ = ["Net", "LayerRuntimeError", "LayerMemoryError", "TRAIN", "TEST"]

log = logging.getLogger("pycaffe_lowbit")

class LayerRuntimeError(RuntimeError):
    """A layer failed during forward or backward; the message names it."""



def _mean_abs(array):
    return float(abs(array).mean()) if array.size else 0.0


def _shape_str(shape):
    return " ".join(str(d) for d in shape) + " (%d)" % int(np.prod(shape, dtype=np.int64))


class Net(NetParams, NetWeights, FusedPasses):
    """A Caffe network. ``Net(model, phase)``, ``Net(model, weights, phase)`` or
    ``Net(model, phase, weights=...)``; ``model`` is a prototxt path or a
    NetParameter. ``level`` and ``stages`` complete the NetState."""

    def __init__(self, model, *args, phase=None, weights=None, level=0, stages=None,
                 dtype=None):
        phase, weights = _parse_net_args(args, phase, weights)
        if isinstance(weights, str):
            weights = weights.split(",") if weights else []
        # pycaffe's CheckFile: a file that cannot be opened is a RuntimeError.
        for path, what in [(model, "net")] + [(w, "weights") for w in weights or ()]:
            if isinstance(path, str):
                check_file(path, what)
        self._source = model if isinstance(model, str) else "<NetParameter>"
        param = _load_net_param(model)
        param.state.phase = phase
        param.state.level = level
        if stages is not None:
            del param.state.stage[:]
            param.state.stage.extend(stages)
        self.phase = phase
        self._dtype = np.dtype(dtype or backend.default_dtype())
        self._init(param)
        for w in weights or ():
            self.copy_from(w)

    # -- construction ----------------------------------------------------------
    def _init(self, in_param):
        param = insert_splits(filter_net(in_param))
        self.name = param.name
        self._param = param
        self.force_backward = param.force_backward
        self.debug_info = param.debug_info
        self.layers = []            # internal layer objects
        self._layer_names = []
        self._blobs = []
        self._blob_names = []
        self._blob_index = {}
        self._bottom_id_vecs = []
        self._top_id_vecs = []
        self._bottom_need_backward = []
        self._layer_need_backward = []
        self._blob_need_backward = []
        self._inputs = []
        self._params = []           # every param blob, in layer order
        self._param_owner = []      # index into _params of the owner, or -1
        self._param_layer = []      # (layer index, blob index) per param
        self._param_names = {}      # ParamSpec name -> index into _params
        self.learnable_params = []
        self.params_lr = []
        self.params_weight_decay = []
        self.params_clip_data = []  # ParamSpec.clip_data per learnable param (0: none)
        self._has_lr = []
        self._has_decay = []
        self._learnable_index = []  # per param: index into learnable_params

        available = set()
        for layer_id, lp in enumerate(param.layer):
            if not lp.HasField("phase"):
                lp.phase = param.state.phase
            if len(lp.propagate_down) and len(lp.propagate_down) != len(lp.bottom):
                raise NetDefinitionError(
                    "layer '%s': propagate_down must be given 0 or %d (= bottom count) "
                    "times, got %d" % (lp.name, len(lp.bottom), len(lp.propagate_down)))
            layer = create_layer(lp, dtype=self._dtype)
            self.layers.append(layer)
            self._layer_names.append(lp.name)
            log.info("Creating Layer %s", lp.name)
            need_backward = False
            bottoms, bottom_ids, bottom_need = [], [], []
            for j, name in enumerate(lp.bottom):
                if name not in self._blob_index or name not in available:
                    raise NetDefinitionError(
                        "unknown bottom blob '%s' (layer '%s', bottom index %d)"
                        % (name, lp.name, j))
                blob_id = self._blob_index[name]
                log.info("%s <- %s", lp.name, name)
                bottoms.append(self._blobs[blob_id])
                bottom_ids.append(blob_id)
                need = self._blob_need_backward[blob_id]
                if len(lp.propagate_down):
                    need = bool(lp.propagate_down[j])
                bottom_need.append(need)
                need_backward |= self._blob_need_backward[blob_id]
                available.discard(name)
            tops, top_ids = [], []
            for j, name in enumerate(lp.top):
                if j < len(lp.bottom) and lp.bottom[j] == name:
                    blob_id = self._blob_index[name]          # in place
                    log.info("%s -> %s (in-place)", lp.name, name)
                elif name in self._blob_index:
                    raise NetDefinitionError(
                        "top blob '%s' of layer '%s' is produced by multiple sources"
                        % (name, lp.name))
                else:
                    blob_id = self._new_blob(name)
                    log.info("%s -> %s", lp.name, name)
                tops.append(self._blobs[blob_id])
                top_ids.append(blob_id)
                available.add(name)
                if lp.type == "Input":
                    self._inputs.append(blob_id)
            if layer.auto_top_blobs:
                while len(tops) < layer.min_top_count():
                    blob_id = self._new_blob("(automatic)", unique=False)
                    tops.append(self._blobs[blob_id])
                    top_ids.append(blob_id)
            self._setup_layer(layer, lp, bottoms, tops)
            for blob_id, top in zip(top_ids, tops):
                log.info("Top shape: %s", _shape_str(top.shape))
            n_param = len(layer.blobs)
            if len(lp.param) > n_param:
                raise NetDefinitionError(
                    "too many params specified for layer '%s' (%d param specs, "
                    "%d param blobs)" % (lp.name, len(lp.param), n_param))
            for k in range(n_param):
                spec = lp.param[k] if k < len(lp.param) else caffe_pb2.ParamSpec()
                wants = spec.lr_mult != 0
                need_backward |= wants
                layer.param_propagate_down[k] = wants
                self._append_param(layer_id, k, spec)
            self._bottom_id_vecs.append(bottom_ids)
            self._top_id_vecs.append(top_ids)
            self._bottom_need_backward.append(bottom_need)
            self._layer_need_backward.append(need_backward)
            if need_backward:
                for blob_id in top_ids:
                    self._blob_need_backward[blob_id] = True

        self._blob_loss_weight = [0.0] * len(self._blobs)
        for layer, top_ids in zip(self.layers, self._top_id_vecs):
            for blob_id, w in zip(top_ids, layer.loss_weights):
                if w:
                    self._blob_loss_weight[blob_id] = w
        self._decide_backward()
        self._outputs = sorted((self._blob_index[n] for n in available),
                               key=lambda i: self._blob_names[i])
        for blob_id in self._outputs:
            log.info("This network produces output %s", self._blob_names[blob_id])
        self._share_weights()
        self._plan_fusion()
        log.info("Network initialization done.")

    def _new_blob(self, name, unique=True):
        blob_id = len(self._blobs)
        self._blobs.append(Blob((), dtype=self._dtype))
        self._blob_names.append(name)
        if unique:
            self._blob_index[name] = blob_id
        self._blob_need_backward.append(False)
        return blob_id

    def _setup_layer(self, layer, lp, bottoms, tops):
        try:
            layer.setup(bottoms, tops)
        except (LayerSetupError, NetDefinitionError):
            raise
        except MemoryError as exc:
            raise layer_memory_error(lp.name, lp.type, lp.top, tops, exc) from None
        except Exception as exc:
            if is_user_error(exc):    # a Python layer's own error: as pycaffe, unchanged
                raise
            shapes = ", ".join("'%s' %s" % (n, tuple(b.shape))
                               for n, b in zip(lp.bottom, bottoms))
            raise LayerSetupError(
                "layer '%s' (type %s) failed to set up with bottoms [%s]: %s: %s"
                % (lp.name, lp.type, shapes, type(exc).__name__, exc)) from exc

    def _decide_backward(self):
        """Caffe's pass from the last layer down: a layer needs backward only if
        one of its tops carries loss; then ``force_backward``."""
        under_loss, skip = set(), set()
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            contributes, skip_down = False, True
            for k, blob_id in enumerate(self._top_id_vecs[i]):
                if (k < len(layer.loss_weights) and layer.loss_weights[k]) \
                        or blob_id in under_loss:
                    contributes = True
                if blob_id not in skip:
                    skip_down = False
                if contributes and not skip_down:
                    break
            if self._layer_need_backward[i] and skip_down:
                self._layer_need_backward[i] = False
                self._bottom_need_backward[i] = [False] * len(self._bottom_id_vecs[i])
            if not contributes:
                self._layer_need_backward[i] = False
            for j, blob_id in enumerate(self._bottom_id_vecs[i]):
                if contributes:
                    under_loss.add(blob_id)
                else:
                    self._bottom_need_backward[i][j] = False
                if not self._bottom_need_backward[i][j]:
                    skip.add(blob_id)
            log.info("%s %s backward computation.", self._layer_names[i],
                     "needs" if self._layer_need_backward[i] else "does not need")
        if self.force_backward:
            for i, layer in enumerate(self.layers):
                self._layer_need_backward[i] = True
                for j, blob_id in enumerate(self._bottom_id_vecs[i]):
                    need = self._bottom_need_backward[i][j] or layer.allow_force_backward(j)
                    self._bottom_need_backward[i][j] = need
                    self._blob_need_backward[blob_id] |= need
                layer.param_propagate_down = [True] * len(layer.blobs)

    # -- passes ------------------------------------------------------------
    def forward_from_to(self, start, end):
        """Run layers start..end inclusive; return the weighted loss."""
        loss = 0.0
        i = start
        while i <= end:
            taken = self._forward_group(i, end)    # a fused group (net_fusion.py)
            if not taken:
                loss += self._forward_layer(i)
            i += taken or 1
        return loss

    def _forward_layer(self, i):
        """Layer i's reshape and forward; its loss contribution."""
        layer = self.layers[i]
        bottom = [self._blobs[k] for k in self._bottom_id_vecs[i]]
        top = [self._blobs[k] for k in self._top_id_vecs[i]]
        self._run(i, "forward", layer.reshape, bottom, top)
        self._run(i, "forward", layer.forward, bottom, top)
        loss = 0.0
        for t, w in zip(top, layer.loss_weights):
            if w:
                if not t.has_diff:       # reallocated by a reshape: the loss
                    t.diff[...] = w      # weight lives in the diff, as in Caffe
                loss += float((t.data * t.diff).sum())
        if self.debug_info:
            self._log_forward(i)
        return loss

    def _run(self, i, stage, fn, *args):
        """fn(*args) for layer i, its failures raised naming the layer."""
        try:
            return fn(*args)
        except (LayerSetupError, NetDefinitionError):
            raise
        except Exception as exc:
            if isinstance(exc, MemoryError) and stage == "forward":
                raise layer_memory_error(
                    self._layer_names[i], self.layers[i].type,
                    [self._blob_names[k] for k in self._top_id_vecs[i]],
                    [self._blobs[k] for k in self._top_id_vecs[i]], exc) from None
            if is_user_error(exc):
                raise
            raise self._layer_failure(i, stage, exc) from exc

    # Caffe's debug_info lines: the mean absolute value of each blob touched.
    def _log_forward(self, i):
        name = self._layer_names[i]
        for k in self._top_id_vecs[i]:
            log.info("    [Forward] Layer %s, top blob %s data: %g", name,
                     self._blob_names[k], _mean_abs(self._blobs[k].data))
        for j, blob in enumerate(self.layers[i].blobs):
            log.info("    [Forward] Layer %s, param blob %d data: %g", name, j,
                     _mean_abs(blob.data))

    def _log_backward(self, i):
        name = self._layer_names[i]
        for k, need in zip(self._bottom_id_vecs[i], self._bottom_need_backward[i]):
            if need:
                log.info("    [Backward] Layer %s, bottom blob %s diff: %g", name,
                         self._blob_names[k], _mean_abs(self._blobs[k].diff))
        for j, blob in enumerate(self.layers[i].blobs):
            if self.layers[i].param_propagate_down[j]:
                log.info("    [Backward] Layer %s, param blob %d diff: %g", name, j,
                         _mean_abs(blob.diff))

    def backward_from_to(self, start, end, every_layer=False):
        """Run backward for layers start down to end inclusive (start >= end), the
        layers that need it; ``every_layer``: each layer, as ``caffe time`` does
        (with each bottom's need as the net decided it)."""
        i = start
        while i >= end:
            taken = self._backward_group(i, end, every_layer)
            if not taken and (every_layer or self._layer_need_backward[i]):
                bottom = [self._blobs[k] for k in self._bottom_id_vecs[i]]
                top = [self._blobs[k] for k in self._top_id_vecs[i]]
                self._run(i, "backward", self.layers[i].backward, top,
                          self._bottom_need_backward[i], bottom)
                if self.debug_info:
                    self._log_backward(i)
            i -= taken or 1

    def _layer_failure(self, i, stage, exc):
        """An error naming the layer, its type and its bottom blobs' shapes."""
        shapes = ", ".join("'%s' %s" % (self._blob_names[k], self._blobs[k].shape)
                           for k in self._bottom_id_vecs[i])
        return LayerRuntimeError("layer '%s' (type %s) failed in %s with bottoms [%s]: "
                                 "%s: %s" % (self._layer_names[i], self.layers[i].type,
                                             stage, shapes, type(exc).__name__, exc))

    def forward_prefilled(self):
        """Caffe's Net::Forward(): all layers, returns the loss."""
        return self.forward_from_to(0, len(self.layers) - 1)

    def backward_all(self):
        self.backward_from_to(len(self.layers) - 1, 0)

    def forward_backward(self):
        """Forward then backward over the whole net; returns the loss."""
        loss = self.forward_prefilled()
        self.backward_all()
        return loss

    def reshape(self):
        for i, layer in enumerate(self.layers):
            layer.reshape([self._blobs[k] for k in self._bottom_id_vecs[i]],
                          [self._blobs[k] for k in self._top_id_vecs[i]])
        self._refresh_loss_diffs()

    def _refresh_loss_diffs(self):
        for i, layer in enumerate(self.layers):
            for blob_id, w in zip(self._top_id_vecs[i], layer.loss_weights):
                if w:
                    self._blobs[blob_id].diff[...] = w

    def set_iteration(self, iteration):
        """Tell the layers that follow a schedule (``set_iteration(i)``, e.g. the
        weight-search temperature) the solver's current iteration."""
        for layer in self.layers:
            hook = getattr(layer, "set_iteration", None)
            if hook is not None:
                hook(iteration)

    # -- introspection -----------------------------------------------------
    def blob_by_name(self, name):
        return self._blobs[self._blob_index[name]]

    def has_blob(self, name):
        return name in self._blob_index

    def layer_by_name(self, name):
        return self.layers[self._layer_names.index(name)]

    def bottom_need_backward(self, layer_id):
        return list(self._bottom_need_backward[layer_id])

    def layer_need_backward(self, layer_id):
        return self._layer_need_backward[layer_id]


