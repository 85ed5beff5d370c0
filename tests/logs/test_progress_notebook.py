"""Progress bars in Jupyter: tqdm.auto's choice, checked without a notebook by
making tqdm believe it runs in a kernel (the module ipykernel.zmqshell loaded,
IPython's shell present), then re-importing tqdm.auto as a kernel would."""
import importlib
import sys
import types
import warnings

import pytest

from pycaffe_lowbit.logs import progress

IPython = pytest.importorskip("IPython")


def _reload_tqdm():
    import tqdm.autonotebook
    import tqdm.auto
    import tqdm.notebook
    importlib.reload(tqdm.notebook)
    importlib.reload(tqdm.autonotebook)
    importlib.reload(tqdm.auto)


@pytest.fixture
def kernel(monkeypatch):
    """As in a Jupyter kernel; tqdm is re-imported on entry and on exit."""
    class ZMQInteractiveShell:
        config = {"IPKernelApp": {}}

    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    monkeypatch.setattr(IPython, "get_ipython", lambda: ZMQInteractiveShell())
    yield monkeypatch
    monkeypatch.undo()
    _reload_tqdm()


def test_a_terminal_or_a_pipe_gets_the_terminal_bar():
    import tqdm.std
    bar = progress.bar_class()
    assert issubclass(bar, tqdm.std.tqdm) and not progress.notebook_bar()
    assert not progress.wanted("auto")          # pytest captures: no terminal


def test_a_kernel_with_ipywidgets_gets_the_widget(kernel):
    pytest.importorskip("ipywidgets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # tqdm's "experimental" notice
        _reload_tqdm()
    import tqdm.notebook
    assert issubclass(progress.bar_class(), tqdm.notebook.tqdm)
    assert progress.notebook_bar()
    assert progress.wanted("auto")              # no terminal, but a notebook
    assert not progress.wanted("off")


def test_a_kernel_without_ipywidgets_falls_back_to_the_terminal_bar(kernel):
    kernel.setitem(sys.modules, "ipywidgets", None)
    with pytest.warns(Warning, match="IProgress not found"):
        _reload_tqdm()
    assert not progress.notebook_bar() and not progress.wanted("auto")
