"""Layers, one module per family; importing this package registers them all."""
import importlib
import pkgutil

from .base import Layer, LayerSetupError
from .registry import register, create_layer, layer_class, layer_type_list

__all__ = ["Layer", "LayerSetupError", "register", "create_layer", "layer_class",
           "layer_type_list"]

_NOT_LAYERS = {"base", "registry"}

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _NOT_LAYERS and not _info.name.startswith("_"):
        importlib.import_module("%s.%s" % (__name__, _info.name))
