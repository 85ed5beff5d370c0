"""The pycaffe Net surface: ``net.blobs``, ``net.params``, ``net.forward(**inputs)``...

Same names and behaviour as BVLC's python/caffe/pycaffe.py, so scripts written
for ``import caffe`` run with ``import pycaffe_lowbit as caffe``; errors have
pycaffe's types (an unknown ``start``/``end`` layer is a ValueError, as
pycaffe's ``list.index``, and a KeyError; ``set_input_arrays`` raises
``InputArraysError``, a RuntimeError as pycaffe's C++ checks). One deliberate
difference: an input of another shape than its blob (pycaffe raises "Input is
not batch sized") reshapes the blob instead, and the next forward reshapes the
net.

GPU mode: as in pycaffe, what users get is NumPy. ``net.blobs``, ``net.params``
and a Python layer's arguments hold each blob's ``pycaffe_view()`` (a
``BlobView``: ``data``/``diff`` are host copies, downloaded when the device is
ahead, uploaded before the engine's next use when written; ``core/synced.py``);
``forward``/``backward`` return NumPy arrays, read-only snapshots in GPU mode
(write through ``net.blobs[name].data``; a training loop then uploads nothing).
In CPU mode they are the blobs and their arrays themselves.
"""
import collections
import itertools

import numpy as np

from ..core import backend
from ..core import net as _net
from ..core.errors import PycaffeKeyError
from ..layers.base import LayerSetupError


class InputArraysError(LayerSetupError, RuntimeError):
    """``set_input_arrays`` refused its arguments (pycaffe: RuntimeError)."""


class Net(_net.Net):
    __doc__ = _net.Net.__doc__

    # -- dictionaries --------------------------------------------------------
    @property
    def blobs(self):
        """OrderedDict blob name -> Blob, in creation order (Split blobs included);
        in GPU mode their pycaffe views (``data``/``diff`` are NumPy)."""
        return collections.OrderedDict((name, blob.pycaffe_view())
                                       for name, blob in zip(self._blob_names, self._blobs))

    @property
    def params(self):
        """OrderedDict layer name -> list of param Blobs, for layers that have
        any (their pycaffe views in GPU mode)."""
        return collections.OrderedDict(
            (name, _views(layer.blobs))
            for name, layer in zip(self._layer_names, self.layers) if len(layer.blobs))

    @property
    def layer_dict(self):
        """OrderedDict layer name -> layer; in GPU mode a ``LayerView`` whose
        ``blobs`` are pycaffe views (``net.layers`` is the engine's own list: its
        layers' ``blobs`` hold device arrays)."""
        return collections.OrderedDict(
            (name, _layer_view(layer)) for name, layer in zip(self._layer_names, self.layers))

    @property
    def blob_loss_weights(self):
        return collections.OrderedDict(zip(self._blob_names, self._blob_loss_weight))

    @property
    def inputs(self):
        return [self._blob_names[i] for i in self._inputs]

    @property
    def outputs(self):
        return [self._blob_names[i] for i in self._outputs]

    @property
    def top_names(self):
        return collections.OrderedDict(
            (name, [self._blob_names[i] for i in ids])
            for name, ids in zip(self._layer_names, self._top_id_vecs))

    @property
    def bottom_names(self):
        return collections.OrderedDict(
            (name, [self._blob_names[i] for i in ids])
            for name, ids in zip(self._layer_names, self._bottom_id_vecs))

    def _top_ids(self, layer_id):
        """Blob indices of layer ``layer_id``'s tops."""
        return list(self._top_id_vecs[layer_id])

    def _bottom_ids(self, layer_id):
        return list(self._bottom_id_vecs[layer_id])

    # -- passes ------------------------------------------------------------
    def _forward(self, start, end):
        return self.forward_from_to(start, end)

    def _backward(self, start, end):
        self.backward_from_to(start, end)

    def after_backward(self, callback):
        """pycaffe's ``net.after_backward(nccl)`` (layer-wise reduction, when
        ``layer_wise_reduce``): accepted for an ``NCCL`` object only, which
        already reduces every gradient in one fused call at
        ``on_gradients_ready``; other per-layer callbacks are not supported."""
        from ..parallel.nccl import NCCL
        if not isinstance(callback, NCCL):
            raise TypeError("net.after_backward takes a caffe.NCCL object (per-layer "
                            "callbacks are not supported), got %r" % type(callback).__name__)

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Forward from layer ``start`` to ``end`` (names; default all), after
        copying ``kwargs`` (input name -> array) into the input blobs. Returns
        {name: data} for the outputs (or ``end``'s tops) and ``blobs``: NumPy
        arrays (in GPU mode read-only host snapshots)."""
        blobs = list(blobs or [])
        start_ind = self._layer_index(start) if start is not None else 0
        if end is not None:
            end_ind = self._layer_index(end)
            outputs = set(self.top_names[end] + blobs)
        else:
            end_ind = len(self.layers) - 1
            outputs = set(self.outputs + blobs)
        if kwargs:
            if set(kwargs) != set(self.inputs):
                raise ValueError("input blob arguments %s do not match net inputs %s"
                                 % (sorted(kwargs), self.inputs))
            for name, value in kwargs.items():
                self._set_blob(name, value, "data")
        self._forward(start_ind, end_ind)
        return {out: self.blob_by_name(out).host_data(write=False) for out in outputs}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Backward from ``start`` down to ``end`` (names; default all), after
        copying ``kwargs`` (output name -> diff) into the output diffs. Returns
        {name: diff} for the inputs (or ``end``'s bottoms) and ``diffs``, NumPy
        arrays as ``forward``'s."""
        diffs = list(diffs or [])
        start_ind = self._layer_index(start) if start is not None else len(self.layers) - 1
        if end is not None:
            end_ind = self._layer_index(end)
            outputs = set(self.bottom_names[end] + diffs)
        else:
            end_ind = 0
            outputs = set(self.inputs + diffs)
        if kwargs:
            if set(kwargs) != set(self.outputs):
                raise ValueError("top diff arguments %s do not match net outputs %s"
                                 % (sorted(kwargs), self.outputs))
            for name, value in kwargs.items():
                self._set_blob(name, value, "diff")
        self._backward(start_ind, end_ind)
        return {out: self.blob_by_name(out).host_diff(write=False) for out in outputs}

    def _layer_index(self, name):
        try:
            return self._layer_names.index(name)
        except ValueError:   # pycaffe: list.index's ValueError
            raise PycaffeKeyError("no layer named '%s' in net '%s'"
                                  % (name, self.name)) from None

    def _set_blob(self, name, value, what):
        blob = self.blob_by_name(name)
        value = backend.to_device(np.asarray(value) if not hasattr(value, "shape")
                                  else value, blob.xp)
        if tuple(value.shape) != blob.shape:
            if what == "diff":
                raise ValueError("diff for '%s' has shape %s, the blob has %s"
                                 % (name, tuple(value.shape), blob.shape))
            blob.reshape(value.shape)
        getattr(blob, what)[...] = value

    def forward_all(self, blobs=None, **kwargs):
        """Forward the whole of each input, batch by batch; returns {name: array}
        for the outputs and ``blobs``, concatenated over the batches (a scalar
        output such as a loss gives one value per batch)."""
        outs = _Collector(set(self.outputs + list(blobs or [])))
        for batch in self._batch(kwargs):
            outs.add(self.forward(blobs=blobs, **batch))
        return outs.result(_num_items(kwargs))

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward_all and backward_all together: kwargs name inputs and output diffs."""
        outs = _Collector(set(self.outputs + list(blobs or [])))
        grads = _Collector(set(self.inputs + list(diffs or [])))
        forward_in = {k: v for k, v in kwargs.items() if k in self.inputs}
        backward_in = {k: v for k, v in kwargs.items() if k not in self.inputs}
        for fb, bb in itertools.zip_longest(self._batch(forward_in),
                                            self._batch(backward_in), fillvalue={}):
            outs.add(self.forward(blobs=blobs, **fb))
            grads.add(self.backward(diffs=diffs, **bb))
        num = _num_items(kwargs)
        return outs.result(num), grads.result(num)

    def _batch(self, arrays):
        """Split {name: array} into batch-sized dicts (last one zero-padded)."""
        if not arrays:
            yield {}
            return
        num = len(next(iter(arrays.values())))
        batch_size = self.blob_by_name(next(iter(arrays))).shape[0]
        for start in range(0, num, batch_size):
            batch = {}
            for name, array in arrays.items():
                chunk = backend.to_numpy(array[start:start + batch_size])   # host or device
                if len(chunk) < batch_size:
                    pad = np.zeros((batch_size - len(chunk),) + chunk.shape[1:], chunk.dtype)
                    chunk = np.concatenate([chunk, pad])
                batch[name] = chunk
            yield batch

    # -- summary ---------------------------------------------------------------
    def summary(self, infer_from_weights=True):
        """What the net costs per layer: bits of weights and inputs, params,
        MACs (float and low-bit) and memory as trained and deployed, with the
        totals (a ``deploy.summary.NetSummary``; ``print`` it for the table).
        With ``infer_from_weights``, plain layers holding alpha * sign weights
        count as 1 bit (2 for ternary)."""
        from ..deploy.summary import summarize
        return summarize(self, infer_from_weights)

    def _repr_html_(self):
        """A notebook shows a Net as its summary table."""
        return self.summary().to_html()

    def _repr_pretty_(self, printer, cycle):
        """IPython's plain view: the summary as text."""
        printer.text("<Net %s>" % self.name if cycle else self.summary().to_text())

    def set_input_arrays(self, data, labels):
        """Feed a MemoryData layer (first in the net) with data and labels."""
        layer = self.layers[0]
        if getattr(layer, "type", None) != "MemoryData":
            raise InputArraysError("set_input_arrays may only be called if the first layer "
                                   "is a MemoryData layer (it is %s '%s')"
                                   % (layer.type, self._layer_names[0]))
        try:
            layer.reset(data, labels)
        except LayerSetupError as exc:
            raise InputArraysError(str(exc)) from None



def _views(blobs):
    """``blobs``' pycaffe views: the list itself when they are NumPy blobs."""
    views = [b.pycaffe_view() for b in blobs]
    return blobs if all(v is b for v, b in zip(views, blobs)) else views


def _layer_view(layer):
    """``layer`` itself when its blobs are NumPy (or it has none), else its
    LayerView (made once)."""
    if _views(layer.blobs) is layer.blobs:
        return layer
    view = layer.__dict__.get("_pycaffe_view")
    if view is None:
        view = layer.__dict__["_pycaffe_view"] = LayerView(layer)
    return view


class LayerView:
    """A layer as pycaffe shows it in GPU mode: ``blobs`` is the list of its
    blobs' pycaffe views (NumPy ``data``/``diff``); every other attribute is the
    layer's (``type``, a Python layer's own state...). ``isinstance`` sees the
    layer's class."""

    __slots__ = ("_layer",)

    def __init__(self, layer):
        object.__setattr__(self, "_layer", layer)

    @property
    def __class__(self):
        return type(self._layer)

    @property
    def blobs(self):
        return _views(self._layer.blobs)

    def __getattr__(self, name):
        return getattr(self._layer, name)

    def __setattr__(self, name, value):
        setattr(self._layer, name, value)

    def __repr__(self):
        return repr(self._layer)


def _num_items(kwargs):
    return len(next(iter(kwargs.values()))) if kwargs else None


class _Collector:
    """Gathers per-batch outputs: item arrays are concatenated and trimmed of
    the padding; scalars (losses, accuracies) are kept one per batch."""

    def __init__(self, names):
        self.values = {name: [] for name in names}
        self.scalar = set()

    def add(self, outputs):
        for name, value in outputs.items():
            value = backend.to_numpy(value).copy()
            if value.ndim == 0:
                self.scalar.add(name)
                self.values[name].append(value)
            else:
                self.values[name].extend(value)

    def result(self, num):
        out = {}
        for name, values in self.values.items():
            array = np.asarray(values)
            out[name] = array if (name in self.scalar or num is None) else array[:num]
        return out
