"""Exceptions that keep pycaffe's types, and the rule for a user's Python layer.

pycaffe scripts catch the types pycaffe raises (``except RuntimeError`` around
``caffe.Net(...)``, ``except AssertionError`` around ``coord_map.crop``). Where
our error is clearer than pycaffe's, its class derives from both ours and
pycaffe's, so either ``except`` catches it:

================================  =========================================
class (bases)                      raised where pycaffe raises
================================  =========================================
``CannotOpenFileError``            ``caffe.Net(path, ...)``: a net or weights
(OSError, RuntimeError)            file that cannot be opened (pycaffe's
                                   CheckFile: RuntimeError "Could not open file")
``MissingFileError``               the same, for a file that does not exist
(FileNotFoundError,
CannotOpenFileError)
``PycaffeAssertionError``          a failed ``assert`` of pycaffe's Python code
(ValueError, AssertionError)       (``coord_map.crop``, ``conv_params``)
``PycaffeKeyError``                a lookup pycaffe does with ``dict[key]``
(ValueError, KeyError)             (KeyError) or ``list.index`` (ValueError):
                                   ``coord_map``'s kernel_size, ``net.forward``'s
                                   start/end (unquoted, unlike KeyError's text)
================================  =========================================

``LayerMemoryError`` (a MemoryError, as pycaffe's std::bad_alloc) names the
layer whose blob does not fit in memory, the top (or param), its shape and
the bytes it needs.

A user's Python layer (``type: "Python"``) that raises in ``setup``,
``reshape``, ``forward`` or ``backward`` is not wrapped: pycaffe lets the
user's exception through, so we re-raise that very object (its type, its
arguments and its traceback), with a note naming the layer and the method
(``add_note``: printed under the traceback from Python 3.11).
``is_user_error`` tells the net and the command line it is one.
"""
import errno as _errno

_USER_LAYER = "_pycaffe_lowbit_python_layer"


class CannotOpenFileError(OSError, RuntimeError):
    """A file ``caffe.Net`` was given cannot be opened (pycaffe: RuntimeError)."""


class MissingFileError(FileNotFoundError, CannotOpenFileError):
    """A file ``caffe.Net`` was given does not exist (pycaffe: RuntimeError)."""


class PycaffeAssertionError(ValueError, AssertionError):
    """A precondition pycaffe checks with ``assert``."""


class PycaffeKeyError(ValueError, KeyError):
    """A lookup pycaffe does with ``dict[key]`` or ``list.index``."""

    __str__ = BaseException.__str__


def check_file(path, what):
    """pycaffe's CheckFile: ``path`` must open for reading, or
    ``MissingFileError`` / ``CannotOpenFileError`` (both RuntimeErrors) say
    which file and why."""
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        code = exc.errno if exc.errno is not None else _errno.EIO
        cls = MissingFileError if isinstance(exc, FileNotFoundError) else CannotOpenFileError
        raise cls(code, "Could not open %s file (%s)" % (what, exc.strerror or exc),
                  path) from None


def add_note(exc, note):
    """PEP 678's ``exc.add_note(note)``, also on Python < 3.11 (where the
    note is kept in ``__notes__`` but not printed)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:
        notes = getattr(exc, "__notes__", None)
        try:
            if notes is None:
                exc.__notes__ = notes = []
            notes.append(note)
        except (AttributeError, TypeError):
            pass


def mark_user_error(exc, layer_name, method, where):
    """Mark ``exc``, raised by the user's Python layer ``layer_name`` in
    ``method``, to pass through the net unwrapped; note where it came from
    (once: a marked error re-raised by an outer call is left alone)."""
    if getattr(exc, _USER_LAYER, None) is not None:
        return
    try:
        setattr(exc, _USER_LAYER, (layer_name, method, where))
    except (AttributeError, TypeError):  # an exception class with __slots__
        return
    add_note(exc, "(raised by the %s() of Python layer '%s', %s)" % (method, layer_name, where))


def is_user_error(exc):
    """True for an exception raised by a user's Python layer."""
    return getattr(exc, _USER_LAYER, None) is not None


def user_error_summary(exc):
    """One line for the command line: the layer, the method, the user's file
    and line, and the exception (``layer 'py' (Python, mymod.MyLayer) raised
    in setup() at mymod.py:12: RuntimeError: boom``)."""
    layer_name, method, where = getattr(exc, _USER_LAYER)
    location = ""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if not frame.f_globals.get("__name__", "").startswith("pycaffe_lowbit"):
            location = " at %s:%d" % (frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return ("layer '%s' (Python, %s) raised in %s()%s: %s: %s"
            % (layer_name, where, method, location, type(exc).__name__, exc))


class LayerMemoryError(MemoryError):
    """A layer's blob does not fit in memory; the message names the layer, the
    top (or param), its shape and the bytes it needs."""


def layer_memory_error(name, type_name, top_names, tops, exc):
    """The LayerMemoryError for ``exc`` raised while layer ``name`` set up or
    reshaped its ``tops`` (named ``top_names``)."""
    what = getattr(exc, "what", None) or "a blob of its own"
    for top_name, top in zip(top_names, tops):
        if getattr(exc, "blob", None) is top:
            what = "top '%s'" % top_name
    detail = exc.describe() if hasattr(exc, "describe") else "out of memory: %s" % exc
    return LayerMemoryError("layer '%s' (type %s): %s: %s" % (name, type_name, what, detail))
