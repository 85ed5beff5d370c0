"""Python layers: ``type: "Python"`` with ``python_param { module layer param_str }``.

The user's class subclasses ``caffe.Layer`` (``PyLayer`` here) and implements
pycaffe's four methods ``setup(bottom, top)``, ``reshape(bottom, top)``,
``forward(bottom, top)`` and ``backward(top, propagate_down, bottom)`` on
lists of Blobs. It sees ``self.param_str``, ``self.phase`` and ``self.blobs``
(``self.blobs.add_blob(*shape)`` creates a learnable blob).

In ``net.layers`` the wrapper stands for the user's object: attributes the
wrapper lacks are looked up on it, so ``net.layers[i].my_state`` works.
"""
import importlib

from ..core.blob import Blob
from .base import Layer
from .registry import register


class BlobVec(list):
    """pycaffe's blob vector: a list of Blobs with ``add_blob(*shape)``."""

    def __init__(self, dtype=None):
        super().__init__()
        self._dtype = dtype

    def add_blob(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        blob = Blob(shape, dtype=self._dtype)
        self.append(blob)
        return blob


class PyLayer:
    """Base class of user Python layers (exported as ``caffe.Layer``)."""

    type = "Python"

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass


@register("Python")
class PythonLayer(Layer):
    def __init__(self, param, phase=None, dtype=None):
        super().__init__(param, phase=phase, dtype=dtype)
        pp = param.python_param
        if not pp.module or not pp.layer:
            raise self.error("python_param needs both 'module' and 'layer'")
        try:
            module = importlib.import_module(pp.module)
        except ImportError as exc:
            raise self.error("cannot import python_param module '%s' (is it on "
                             "PYTHONPATH?): %s" % (pp.module, exc)) from exc
        try:
            cls = getattr(module, pp.layer)
        except AttributeError:
            raise self.error("module '%s' has no class '%s'" % (pp.module, pp.layer)) from None
        impl = cls()
        impl.param_str = pp.param_str
        impl.phase = self.phase
        preloaded = self.blobs
        impl.blobs = BlobVec(self.dtype)
        impl.blobs.extend(preloaded)
        impl.layer_param = param
        self.__dict__["impl"] = impl
        self.blobs = impl.blobs

    def __getattr__(self, name):
        impl = self.__dict__.get("impl")
        if impl is None:
            raise AttributeError(name)
        return getattr(impl, name)

    def layer_setup(self, bottom, top):
        self.impl.setup(bottom, top)

    def reshape(self, bottom, top):
        self.impl.reshape(bottom, top)

    def forward(self, bottom, top):
        self.impl.forward(bottom, top)

    def backward(self, top, propagate_down, bottom):
        self.impl.backward(top, list(propagate_down), bottom)
