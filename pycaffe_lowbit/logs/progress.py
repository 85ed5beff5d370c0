"""A progress bar with ETA for ``lowbit-caffe train``, ``test`` and ``time``.

Caffe has none; ours is a tqdm bar on stdout, drawn according to ``--progress``:

* ``auto`` (the default): only when stdout and stderr are both terminals, so
  a log redirected to a file or a pipe (``2>&1 | tee log``, ``2> log``) holds
  nothing but Caffe's glog lines, byte for byte what its parsers expect; or
  in a Jupyter notebook, where the bar is the notebook's widget;
* ``on``: always (e.g. with ``2> train.log`` and the bar on the terminal);
* ``off``: never.

The log lines go to stderr. While a bar is up, each log line is written
between clearing the bar and redrawing it (``log.pause_for``), so a line never
lands in the middle of the bar. The bar is transient (tqdm's ``leave=False``):
once it closes, the terminal holds exactly the log lines.

The bar is tqdm's auto mode (``tqdm.auto``): the notebook widget in a
Jupyter kernel with ipywidgets, the terminal bar everywhere else
(``bar_class``, ``notebook_bar``).

Training: total ``max_iter``, starting at the solver's iteration (a resumed
run starts where its state left off), advanced by pycaffe solver callbacks
(which do not touch the numbers), the smoothed loss as its postfix.
"""
import contextlib
import sys

MODES = ("auto", "on", "off")


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):     # no such method, or closed
        return False


def bar_class():
    """tqdm.auto's bar class: the notebook widget's in a Jupyter kernel with
    ipywidgets installed (tqdm decides when ``tqdm.auto`` is first imported),
    the terminal bar otherwise."""
    from tqdm.auto import tqdm
    return tqdm


def notebook_bar():
    """Whether the bars are notebook widgets (tqdm.auto chose tqdm.notebook)."""
    bar = bar_class()
    notebook = sys.modules.get("tqdm.notebook")
    return notebook is not None and issubclass(bar, notebook.tqdm)


def wanted(mode, stdout=None, stderr=None):
    """Whether ``--progress=mode`` draws a bar with these streams
    (default: the process's stdout and stderr); ``auto`` also draws in a
    notebook (``notebook_bar``)."""
    if mode not in MODES:
        raise ValueError("--progress must be one of %s, got %r" % (", ".join(MODES), mode))
    if mode != "auto":
        return mode == "on"
    if stdout is None and stderr is None and notebook_bar():
        return True
    return _isatty(stdout or sys.stdout) and _isatty(stderr or sys.stderr)


def _stepping_aside(bar):
    """A context manager factory: clear ``bar`` for the block, then redraw it."""
    @contextlib.contextmanager
    def pause():
        with bar.get_lock():
            bar.clear(nolock=True)
            try:
                yield
            finally:
                bar.refresh(nolock=True)
    return pause


@contextlib.contextmanager
def progress_bar(mode, total, initial=0, desc=None, unit="iter"):
    """A tqdm bar on stdout for the block (``None`` when ``mode`` draws none)."""
    if not wanted(mode):
        yield None
        return
    from .glog import pause_for
    bar = bar_class()(total=total, initial=initial, desc=desc, unit=unit, file=sys.stdout,
                      leave=False, dynamic_ncols=True)
    try:
        with pause_for(_stepping_aside(bar)):
            yield bar
    finally:
        bar.close()


def iterate(iterable, mode, total, desc=None, unit="iter"):
    """``iterable``'s items, advancing a bar (when ``mode`` draws one) after each."""
    with progress_bar(mode, total, desc=desc, unit=unit) as bar:
        for item in iterable:
            yield item
            if bar is not None:
                bar.update(1)


@contextlib.contextmanager
def training(solver, mode="auto"):
    """A bar over ``solver``'s iterations for the block (see the module notes);
    in a script or notebook: ``with progress.training(solver): solver.solve()``."""
    with progress_bar(mode, solver.param.max_iter, initial=solver.iter,
                      desc="train") as bar:
        if bar is not None:
            def on_start():
                bar.update(solver.iter - bar.n)

            def on_gradients_ready():
                bar.set_postfix_str("loss=%.4g" % solver.smoothed_loss, refresh=False)

            solver.add_callback(on_start, on_gradients_ready)
        yield bar
        if bar is not None:
            bar.update(solver.iter - bar.n)
