"""Python layers: ``type: "Python"`` with ``python_param { module layer param_str }``.

The user's class subclasses ``caffe.Layer`` (``PyLayer`` here) and implements
pycaffe's four methods ``setup(bottom, top)``, ``reshape(bottom, top)``,
``forward(bottom, top)`` and ``backward(top, propagate_down, bottom)`` on
lists of Blobs. It sees ``self.param_str``, ``self.phase`` and ``self.blobs``
(``self.blobs.add_blob(*shape)`` creates a learnable blob).

In ``net.layers`` the wrapper stands for the user's object: attributes the
wrapper lacks are looked up on it, so ``net.layers[i].my_state`` works.

Errors, as in pycaffe: an exception the user's ``setup``, ``reshape``,
``forward`` or ``backward`` raises reaches the caller unchanged (same type,
same object, same traceback), with a note naming the layer and the method
(``core.errors.mark_user_error``): ``caffe.Net(...)`` raises the
``RuntimeError`` a ``setup`` raised. A module that does not import raises
``PythonLayerImportError`` (an ``ImportError``), a missing class
``PythonLayerClassError`` (an ``AttributeError``), as pycaffe's import does;
both are also ``LayerSetupError``.

GPU mode, as Caffe: a Python layer has only a CPU implementation, so its
bottoms, tops and own blobs are NumPy arrays inside its methods: it is given
the blobs' pycaffe views (``Blob.pycaffe_view``: host copies, downloaded when
read, uploaded before the next layer uses what was written; core/synced.py).
The blobs stay on the device. User code written for pycaffe
(``top[0].data[...] = numpy_array``) runs unchanged.

Security: a net definition with a ``Python`` layer imports the module it
names and runs its code (at import, and in every method), exactly as Caffe
does. Load such a prototxt only from a source you would run a Python script
from. Nothing else in a prototxt, caffemodel or solver state runs code.
"""
import importlib


from ..core import backend
from ..core.blob import Blob
from ..core.errors import mark_user_error
from .base import Layer, LayerSetupError
from .registry import register


class PythonLayerImportError(LayerSetupError, ImportError):
    """``python_param.module`` cannot be imported (pycaffe: ImportError)."""


class PythonLayerClassError(LayerSetupError, AttributeError):
    """The module has no class ``python_param.layer`` (pycaffe: AttributeError)."""


class BlobVec(list):
    """The layer's own blobs (the engine's Blobs), with ``add_blob(*shape)``."""

    def __init__(self, dtype=None):
        super().__init__()
        self._dtype = dtype
        self.xp = None          # where new blobs go: the net's arrays' module

    def add_blob(self, *shape):
        """A new learnable blob (zeros) beside the layer's bottoms and tops."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        blob = Blob(shape, dtype=self._dtype, xp=self.xp or backend.array_module())
        self.append(blob)
        return blob


class UserBlobVec:
    """pycaffe's ``self.blobs`` in a Python layer: the layer's BlobVec seen
    through pycaffe views (``len``, indexing, iteration, ``add_blob``)."""

    def __init__(self, blobs):
        self._blobs = blobs

    def add_blob(self, *shape):
        return self._blobs.add_blob(*shape).pycaffe_view()

    def __len__(self):
        return len(self._blobs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [b.pycaffe_view() for b in self._blobs[index]]
        return self._blobs[index].pycaffe_view()

    def __iter__(self):
        return (b.pycaffe_view() for b in self._blobs)

    def __repr__(self):
        return "UserBlobVec(%r)" % (list(self._blobs),)


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
                             "PYTHONPATH?): %s" % (pp.module, exc),
                             PythonLayerImportError) from exc
        try:
            cls = getattr(module, pp.layer)
        except AttributeError:
            raise self.error("module '%s' has no class '%s'" % (pp.module, pp.layer),
                             PythonLayerClassError) from None
        impl = cls()
        impl.param_str = pp.param_str
        impl.phase = self.phase
        preloaded = self.blobs
        self.blobs = BlobVec(self.dtype)
        self.blobs.extend(preloaded)
        impl.blobs = UserBlobVec(self.blobs)
        impl.layer_param = param
        self.__dict__["impl"] = impl

    def __getattr__(self, name):
        impl = self.__dict__.get("impl")
        if impl is None:
            raise AttributeError(name)
        return getattr(impl, name)

    def _call(self, method, *args):
        """The user's ``method``, on the blobs' pycaffe views (NumPy arrays);
        what it raises goes on unchanged, marked."""
        blobs = [b for a in args if isinstance(a, list) for b in a if isinstance(b, Blob)]
        if blobs:
            self.blobs.xp = blobs[0].xp
        args = [[b.pycaffe_view() if isinstance(b, Blob) else b for b in a]
                if isinstance(a, list) else a for a in args]
        try:
            getattr(self.impl, method)(*args)
        except Exception as exc:
            pp = self.param.python_param
            mark_user_error(exc, self.name, method, "%s.%s" % (pp.module, pp.layer))
            raise

    def layer_setup(self, bottom, top):
        self._call("setup", bottom, top)

    def reshape(self, bottom, top):
        self._call("reshape", bottom, top)

    def forward(self, bottom, top):
        self._call("forward", bottom, top)

    def backward(self, top, propagate_down, bottom):
        self._call("backward", top, list(propagate_down), bottom)
