"""Modules imported on first use, so ``import pycaffe_lowbit`` stays light.

OpenCV (about 20 MiB resident) and h5py (about 13 MiB) are needed only by the
layers and tools that decode images or read HDF5; ``cv2 = lazy_module("cv2")``
at the top of such a file reads as a plain import, and the real import happens
at the first attribute access (``cv2.imdecode``), then is cached.
"""
import importlib
import types

_HINTS = {
    "cv2": "pip install opencv-python-headless",
    "h5py": "pip install h5py",
    "lmdb": "pip install lmdb",
}


class LazyModule(types.ModuleType):
    """Stands for module ``name`` until an attribute is read."""

    def __init__(self, name):
        super().__init__(name)
        self._lazy_module = None

    def _load(self):
        module = self.__dict__["_lazy_module"]
        if module is None:
            name = self.__name__
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                hint = _HINTS.get(name)
                raise ImportError("pycaffe_lowbit needs the %s module here%s"
                                  % (name, ": " + hint if hint else "")) from exc
            self.__dict__["_lazy_module"] = module
        return module

    def __getattr__(self, attr):
        return getattr(self._load(), attr)

    def __dir__(self):
        return dir(self._load())


def lazy_module(name):
    """A stand-in for ``import name`` that imports on first attribute access."""
    return LazyModule(name)
