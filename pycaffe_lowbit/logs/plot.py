"""Plot Caffe training logs: ``lowbit-caffe plot LOG [LOG ...] -o out.png``.

One figure, three panels, every log overlaid in its own colour:

* loss vs iteration: the displayed training loss (solid; Caffe's
  ``Iteration N (...), loss = X``, averaged over ``average_loss`` iterations)
  and the test loss where the log has one (dashed, with markers);
* test accuracy vs iteration (every test output whose name contains ``acc``);
* learning rate vs iteration (log scale when it spans a decade or more).

With several logs, colours name the logs (legend under the panels) and line
styles name the series (legend in each panel).

matplotlib is imported only when a plot is drawn, and draws with its Agg canvas
directly (no pyplot, no display, the caller's backend untouched). Logs are read
with ``pycaffe_lowbit.logs.parse``.
"""
import math
import os

from .parse import LogParseError, parse_log

IMAGE_EXTENSIONS = (".png", ".pdf", ".svg", ".svgz", ".jpg", ".jpeg", ".eps", ".ps",
                    ".tif", ".tiff", ".webp", ".pgf")


def is_image_path(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def _finite(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys)
           if y is not None and not (isinstance(y, float) and math.isnan(y))]
    return [p[0] for p in pts], [p[1] for p in pts]


def _labels(paths):
    """Short, distinct legend names: base names, or more of the path where
    base names repeat."""
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) == len(names):
        return names
    try:
        common = os.path.commonpath([os.path.abspath(p) for p in paths])
        return [os.path.relpath(os.path.abspath(p), common) for p in paths]
    except ValueError:
        return list(paths)


def load_logs(paths):
    """Parse each log; raise LogParseError naming a log with no iterations."""
    logs = []
    for path in paths:
        train, test = parse_log(path)
        if not train and not test:
            raise LogParseError(
                "no training iterations in %s (expected Caffe solver lines such as "
                "'Iteration 100 (...), loss = 0.5' or 'Test net output #0: accuracy = 0.9')"
                % path)
        logs.append((path, train, test))
    return logs


def _train_loss(train):
    xs = [r["NumIters"] for r in train]
    ys = [r.get("SmoothedLoss", math.nan) for r in train]
    xs, ys = _finite(xs, ys)
    if xs:
        return xs, ys
    # No displayed loss: sum the loss outputs.
    xs, ys = [], []
    for r in train:
        losses = [v for k, v in r.items() if "loss" in k.lower() and k != "SmoothedLoss"]
        if losses:
            xs.append(r["NumIters"])
            ys.append(sum(losses))
    return xs, ys


def _test_series(test, want):
    names = []
    for r in test:
        for k in r:
            if k in ("NumIters", "Seconds", "LearningRate", "TestNet") or k in names:
                continue
            if want(k.lower()):
                names.append(k)
    series = []
    nets = sorted({r.get("TestNet", 0) for r in test})
    for net in nets:
        rows = [r for r in test if r.get("TestNet", 0) == net]
        for name in names:
            xs, ys = _finite([r["NumIters"] for r in rows], [r.get(name) for r in rows])
            if xs:
                label = name if len(nets) == 1 else "%s (test net #%d)" % (name, net)
                series.append((label, xs, ys))
    return series


def plot_logs(paths, output, title=None, dpi=120):
    """Draw the logs in ``paths`` to the image file ``output``; return ``output``."""
    if not paths:
        raise ValueError("plot: no log files given")
    logs = load_logs(paths)
    import matplotlib
    import matplotlib.lines
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(16, 5.4 if len(paths) > 1 else 5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    names = _labels(paths)
    multi = len(logs) > 1
    loss_kinds, acc_kinds = {}, {}     # legend entry -> line style (multi-log legends)
    have_lr = False
    lrs_all = []
    handles = []
    test_styles = ["--", ":", "-."]
    for i, ((path, train, test), name) in enumerate(zip(logs, names)):
        c = colors[i % len(colors)]
        handles.append(matplotlib.lines.Line2D([], [], color=c, lw=2, label=name))
        xs, ys = _train_loss(train)
        if xs:
            loss_kinds.setdefault("train loss", ("-", None))
            ax_loss.plot(xs, ys, color=c, lw=1.2, label="train loss")
        for j, (label, txs, tys) in enumerate(_test_series(test, lambda k: "loss" in k)):
            style = test_styles[j % 3]
            loss_kinds.setdefault("test " + label, (style, "o"))
            ax_loss.plot(txs, tys, color=c, ls=style, marker="o", ms=4, lw=1.2,
                         label="test " + label)
        for j, (label, axs, ays) in enumerate(_test_series(test, lambda k: "acc" in k)):
            style = ["-", "--", ":", "-."][j % 4]
            acc_kinds.setdefault(label, (style, "o"))
            ax_acc.plot(axs, ays, color=c, ls=style, marker="o", ms=4, lw=1.2, label=label)
        lxs, lys = _finite([r["NumIters"] for r in train],
                           [r.get("LearningRate") for r in train])
        if lxs:
            have_lr = True
            lrs_all.extend(lys)
            ax_lr.plot(lxs, lys, color=c, lw=1.5, label=name,
                       drawstyle="steps-post")  # lr holds until the next logged change

    ax_loss.set_title("Loss")
    ax_acc.set_title("Test accuracy")
    ax_lr.set_title("Learning rate")
    for ax, ylabel, kinds, what in ((ax_loss, "loss", loss_kinds, "no loss"),
                                    (ax_acc, "accuracy", acc_kinds, "no test accuracy"),
                                    (ax_lr, "learning rate", None, "no learning rate")):
        ax.set_xlabel("iteration")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        have = bool(kinds) if kinds is not None else have_lr
        if not have:
            ax.text(0.5, 0.5, what + " in the log" + ("s" if multi else ""),
                    transform=ax.transAxes, ha="center", va="center", color="gray")
        elif kinds is not None and (multi or len(kinds) > 1 or ax is ax_loss):
            if multi:   # colours name the logs (figure legend); styles name the series
                proxies = [matplotlib.lines.Line2D([], [], color="0.3", ls=ls, marker=mk,
                                                   ms=4, label=k)
                           for k, (ls, mk) in kinds.items()]
                ax.legend(handles=proxies, fontsize="small", loc="best")
            else:
                ax.legend(fontsize="small", loc="best")
    positive = [v for v in lrs_all if v > 0]
    if positive and max(positive) / min(positive) >= 9.99:
        ax_lr.set_yscale("log")
    if acc_kinds:
        lo, hi = ax_acc.get_ylim()
        if lo >= -0.05 and hi <= 1.05:
            ax_acc.set_ylim(max(0.0, lo), min(1.0, hi) + 0.02)
    if title is None:
        title = names[0] if not multi else "Training logs"
    fig.suptitle(title)
    if multi:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6),
                   fontsize="small", frameon=False)
        fig.tight_layout(rect=(0, 0.04 + 0.035 * ((len(handles) - 1) // 6), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(output)
    return output
