"""Module paths of earlier releases, still importable.

Until 0.x the file-format modules lived in ``pycaffe_lowbit.io`` beside
pycaffe's ``caffe.io`` functions; they are now ``pycaffe_lowbit.formats``, and
``pycaffe_lowbit.io`` is pycaffe's ``io`` alone. So that scripts written
against the old paths (``from pycaffe_lowbit.io.text import read_net_param``)
keep running, an import of ``pycaffe_lowbit.io.<name>`` for a format module
returns ``pycaffe_lowbit.formats.<name>`` itself (the same module object), and
warns once with a DeprecationWarning. Nothing is imported before it is asked for.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

OLD_PACKAGE = "pycaffe_lowbit.io"
NEW_PACKAGE = "pycaffe_lowbit.formats"
MOVED = ("blobproto", "caffemodel", "hdf5", "text", "upgrade", "upgrade_v0", "weights")


class _Alias(importlib.abc.Loader):
    """Loads an old name as the module of its new one."""

    def __init__(self, new_name):
        self.new_name = new_name

    def create_module(self, spec):
        warnings.warn("%s is now %s" % (spec.name, self.new_name), DeprecationWarning,
                      stacklevel=2)
        module = importlib.import_module(self.new_name)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module):
        """The module ran under its new name; only its ``__spec__``, which the
        import system just set to the alias's, is put back."""
        module.__spec__ = self.real_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds ``pycaffe_lowbit.io.<name>`` for each format module that moved."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != OLD_PACKAGE or name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(NEW_PACKAGE + "." + name))


def install(io_module):
    """Adds the finder to ``sys.meta_path`` once. Python looks for a submodule
    only under a parent with a ``__path__``: ``io_module`` (the plain module
    ``pycaffe_lowbit.io``) gets an empty one, so only this finder answers."""
    io_module.__path__ = []
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
