"""Nets written in Python: pycaffe's ``net_spec`` (``NetSpec``, ``layers``, ``params``).

    from pycaffe_lowbit import layers as L, params as P, NetSpec
    n = NetSpec()
    n.data, n.label = L.Data(source="train_lmdb", backend=P.Data.LMDB,
                             batch_size=64, ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type="xavier"))
    n.relu1 = L.ReLU(n.conv1, in_place=True)
    n.loss = L.SoftmaxWithLoss(n.conv1, n.label)
    net_param = n.to_proto()        # a caffe_pb2.NetParameter

``L.<Type>(*bottoms, **kwargs)`` makes one layer of type ``<Type>``. Each
keyword goes to the layer's own parameter message (``<type>_param``, found from
the schema: ``ConvolutionParameter`` <-> field ``convolution_param`` serves
type ``Convolution``) when that message has such a field, otherwise to
LayerParameter itself (``name``, ``loss_weight``, ``param``, ``include``,
``propagate_down``...); a keyword ending in ``param`` always goes to
LayerParameter (``transform_param=dict(...)``, ``convolution_param=dict(...)``).
Values: a dict fills a sub-message, a list (or tuple) fills a repeated field
(a list of dicts adds one sub-message per dict), a single value given to a
repeated field is one element.

Two keywords are not fields: ``ntop`` (number of tops, default 1; 0 returns
the layer itself, more than 1 a tuple of tops) and ``in_place`` (the tops
are the bottoms: same names).

Names: ``NetSpec.to_proto`` names each top after the attribute it was
assigned to and each layer after its first top; anything unnamed gets
"<Type><k>" (``Convolution1``, ``ReLU2``...), counted per type in the order
the layers are reached. Layers are emitted bottoms first, in assignment order.

``P.<Type>.<ENUM>`` is the enum value from ``<Type>Parameter``
(``P.Pooling.MAX``, ``P.Eltwise.SUM``, ``P.Data.LMDB``).

Additions to pycaffe (which raises on these): ``Deconvolution`` and ``Im2col``
keywords go to ``convolution_param`` (the message those layers read); an enum
field accepts its value's name as a string (``pool="MAX"``); tuples and NumPy
arrays are accepted as lists; an empty list leaves the field empty.
"""
import collections
import sys

import numpy as np
from google.protobuf import descriptor

from ..proto import caffe_pb2

__all__ = ["NetSpec", "Top", "Function", "layers", "params", "L", "P", "to_proto",
           "param_name_dict", "assign_proto"]

# Layer types that read a parameter message not named after them.
_SHARED_PARAMS = {"Deconvolution": "convolution", "Im2col": "convolution"}


def param_name_dict():
    """Layer type -> prefix of its ``<prefix>_param`` field in LayerParameter,
    from the schema: every ``*_param`` field whose message is ``<Type>Parameter``
    (ConvolutionParameter -> "Convolution": "convolution")."""
    names = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if field.name.endswith("_param") and field.message_type is not None:
            type_name = field.message_type.name
            if type_name.endswith("Parameter"):
                names[type_name[:-len("Parameter")]] = field.name[:-len("_param")]
    for type_name, prefix in _SHARED_PARAMS.items():
        names.setdefault(type_name, prefix)
    return names


_param_names = param_name_dict()


# -- errors: pycaffe's types, our messages ---------------------------------------

class MessageValueError(TypeError, AttributeError):
    """A message field given something other than a dict (pycaffe's setattr on
    a message field raises AttributeError)."""


class NoSuchTopError(AttributeError, KeyError):
    """``n.name`` for a top never assigned (pycaffe: ``self.tops[name]``, a
    KeyError; an AttributeError too, so ``hasattr`` and ``getattr(n, x, d)`` work)."""

    __str__ = BaseException.__str__


# -- filling messages -----------------------------------------------------------

def _is_repeated(field):
    if hasattr(field, "is_repeated"):  # protobuf >= 5.28
        return field.is_repeated
    return field.label == descriptor.FieldDescriptor.LABEL_REPEATED


def _field(proto, name):
    field = proto.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        raise AttributeError("%s has no field '%s'" % (proto.DESCRIPTOR.name, name))
    return field


def _scalar(field, value):
    """``value`` as protobuf takes it for ``field``."""
    if isinstance(value, np.generic):
        value = value.item()
    if field.type == descriptor.FieldDescriptor.TYPE_ENUM and isinstance(value, str):
        enum_value = field.enum_type.values_by_name.get(value)
        if enum_value is None:
            raise ValueError("%s is not a value of %s (field '%s'); expected one of %s"
                             % (value, field.enum_type.name, field.name,
                                ", ".join(field.enum_type.values_by_name)))
        value = enum_value.number
    return value


def _fill(message, values):
    for key, value in values.items():
        assign_proto(message, key, value)


def assign_proto(proto, name, val):
    """Set field ``name`` of message ``proto`` from a Python value: a dict fills
    a sub-message, a list a repeated field (a list of dicts adds sub-messages),
    a lone value given to a repeated field becomes its one element."""
    field = _field(proto, name)
    is_message = field.message_type is not None
    if _is_repeated(field):
        if isinstance(val, np.ndarray):
            val = val.tolist()
        items = list(val) if isinstance(val, (list, tuple)) else [val]
        container = getattr(proto, name)
        for item in items:
            if is_message:
                _fill(container.add(), item)
            else:
                container.append(_scalar(field, item))
    elif is_message:
        if not isinstance(val, dict):
            raise MessageValueError("field '%s' is a %s message: give it a dict, not %r"
                                    % (name, field.message_type.name, val))
        _fill(getattr(proto, name), val)
    else:
        setattr(proto, name, _scalar(field, val))


# -- the graph --------------------------------------------------------------------

class Top:
    """Output ``n`` of layer ``fn``: what layer functions take as bottoms."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n

    def to_proto(self):
        """A NetParameter holding this top's layer and everything below it."""
        return to_proto(self)

    def _update(self, params):
        self.fn._update(params)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)

    def __repr__(self):
        return "<Top %d of %s>" % (self.n, self.fn.type_name)


def _not_a_top(type_name, index, bottom):
    """pycaffe's TypeError, its message exactly (scripts and pycaffe's own tests
    match it); for a tuple, the hint rides as the exception's note (shown in the
    traceback on Python 3.11+) and its ``hint`` attribute."""
    exc = TypeError("%s input %d is not a Top (type is %s)" % (type_name, index, type(bottom)))
    exc.hint = None
    if isinstance(bottom, tuple):
        exc.hint = ("a layer with ntop > 1 gives a tuple of Tops: pass them one by one "
                    "(*tops) or pick one (tops[0])")
        if hasattr(exc, "add_note"):
            exc.add_note("hint: " + exc.hint)
    return exc


class Function:
    """One layer: its type, bottoms (``inputs``), keyword ``params`` and ``tops``."""

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        for index, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                raise _not_a_top(type_name, index, bottom)
        self.inputs = tuple(inputs)
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        if not isinstance(self.ntop, int):      # pycaffe: range(ntop) raises TypeError
            raise TypeError("%s: ntop must be a non-negative int, got %r"
                            % (type_name, self.ntop))
        if self.ntop < 0:
            raise ValueError("%s: ntop must be a non-negative int, got %r"
                             % (type_name, self.ntop))
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _update(self, params):
        self.params.update(params)

    @staticmethod
    def _auto_name(type_name, autonames):
        autonames[type_name] += 1
        return "%s%d" % (type_name, autonames[type_name])

    def _top_name(self, top, names, autonames):
        if top not in names:
            names[top] = self._auto_name(top.fn.type_name, autonames)
        return names[top]

    def _layer_name(self, names, autonames):
        if self not in names:
            if self.tops:
                names[self] = self._top_name(self.tops[0], names, autonames)
            else:
                names[self] = self._auto_name(self.type_name, autonames)
        return names[self]

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, autonames)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = caffe_pb2.LayerParameter(type=self.type_name)
        layer.bottom.extend(bottoms)
        if self.in_place:
            layer.top.extend(bottoms)
        else:
            layer.top.extend(self._top_name(top, names, autonames) for top in self.tops)
        layer.name = self._layer_name(names, autonames)
        prefix = _param_names.get(self.type_name)
        for key, value in self.params.items():
            if key.endswith("param") or prefix is None:
                assign_proto(layer, key, value)
                continue
            own = getattr(layer, prefix + "_param")
            if key in own.DESCRIPTOR.fields_by_name:
                assign_proto(own, key, value)
            else:
                assign_proto(layer, key, value)
        layers[self] = layer


def to_proto(*tops):
    """A NetParameter with the layers producing ``tops`` (and their bottoms);
    every blob and layer is named automatically."""
    layers = collections.OrderedDict()
    autonames = collections.Counter()
    for top in tops:
        top._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class NetSpec:
    """Tops by name: assigning ``n.name = top`` names that top (and the layer
    whose first top it is); ``to_proto()`` gives the NetParameter."""

    def __init__(self):
        super().__setattr__("tops", collections.OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self.tops[name]
        except KeyError:
            raise NoSuchTopError("NetSpec has no top named '%s'" % name) from None

    def __setitem__(self, key, value):
        self.__setattr__(key, value)

    def __getitem__(self, item):
        return self.tops[item]

    def __delitem__(self, name):
        del self.tops[name]

    def __contains__(self, name):
        return name in self.tops

    def keys(self):
        return list(self.tops.keys())

    def vals(self):
        return list(self.tops.values())

    def update(self, name, params):
        """Add or replace keyword ``params`` of the layer behind top ``name``."""
        self.tops[name]._update(params)

    def to_proto(self):
        names = {top: name for name, top in self.tops.items()}
        autonames = collections.Counter()
        layers = collections.OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """``L.<Type>(*bottoms, **kwargs)``: a Top (ntop=1), a tuple of Tops
    (ntop > 1) or the layer Function itself (ntop=0).

    ``package``: a module name whose attributes take precedence. The package
    binds ``layers`` as ``pycaffe_lowbit.layers`` (pycaffe's ``caffe.layers``),
    the name of its layer subpackage; the module-level ``layers`` therefore
    also answers for that subpackage's own names (``create_layer``, ``conv``,
    ``__path__``...), none of which is a Caffe layer type."""

    def __init__(self, package=None):
        super().__setattr__("_package", package)

    def __getattr__(self, type_name):
        module = sys.modules.get(self._package) if self._package else None
        if module is not None and type_name in vars(module):
            return vars(module)[type_name]
        if type_name.startswith("__"):
            raise AttributeError(type_name)

        def layer_fn(*args, **kwargs):
            fn = Function(type_name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops
        layer_fn.__name__ = type_name
        return layer_fn


class _ParamEnums:
    def __init__(self, type_name, message):
        self._type_name, self._message = type_name, message

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return getattr(self._message, name)
        except AttributeError:
            raise AttributeError("%s has no enum value or attribute '%s'"
                                 % (self._message.DESCRIPTOR.name, name)) from None


class Parameters:
    """``P.<Type>.<NAME>``: attribute NAME (an enum value) of ``<Type>Parameter``."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)
        message = getattr(caffe_pb2, type_name + "Parameter", None)
        if message is None and type_name in _param_names:
            field = _param_names[type_name] + "_param"
            message = getattr(caffe_pb2, caffe_pb2.LayerParameter.DESCRIPTOR
                              .fields_by_name[field].message_type.name)
        if message is None:
            raise AttributeError("the schema has no %sParameter" % type_name)
        return _ParamEnums(type_name, message)


layers = L = Layers(__name__.split(".")[0] + ".layers")   # the layer subpackage
params = P = Parameters()
