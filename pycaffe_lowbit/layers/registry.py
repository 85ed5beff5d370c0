"""The layer registry: Caffe's ``type`` string -> Layer class.

``@register("ReLU")`` adds a class; ``create_layer(param)`` builds one from a
LayerParameter, with an error naming the layer and its type when the type is
unknown. Legacy V1 enum names (``CONVOLUTION``) are mapped to these strings by
the legacy upgrade before nets are built, as Caffe does.
"""
import difflib

_REGISTRY = {}


class UnknownLayerTypeError(ValueError):
    pass


def register(*type_names):
    def decorate(cls):
        for name in type_names:
            if name in _REGISTRY and _REGISTRY[name] is not cls:
                raise ValueError("layer type %r registered twice" % name)
            _REGISTRY[name] = cls
        if cls.type is None or cls.type not in type_names:
            cls.type = type_names[0]
        return cls
    return decorate


def layer_class(type_name, layer_name=None):
    try:
        return _REGISTRY[type_name]
    except KeyError:
        close = difflib.get_close_matches(type_name, _REGISTRY, n=3)
        hint = (" Did you mean %s?" % ", ".join(repr(c) for c in close)) if close else ""
        where = ("layer '%s': " % layer_name) if layer_name is not None else ""
        raise UnknownLayerTypeError(
            "%sunknown layer type %r.%s (known types: lowbit_caffe.layer_type_list())"
            % (where, type_name, hint)) from None


def create_layer(param, phase=None, dtype=None):
    """Instantiate the layer described by LayerParameter ``param``."""
    return layer_class(param.type, param.name)(param, phase=phase, dtype=dtype)


def layer_type_list():
    """Every registered layer type, sorted (pycaffe's caffe.layer_type_list())."""
    return sorted(_REGISTRY)
