"""plot: `lowbit-caffe plot LOG [LOG ...] out.png` draws loss, accuracy and lr panels."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from pycaffe_lowbit import cli
from pycaffe_lowbit.logs import plot  # noqa: E402
from pycaffe_lowbit.logs.parse import LogParseError  # noqa: E402
from support import paths

ROOT = paths.ROOT
SOLVERS = os.path.join(paths.GOLDEN, "solvers")
INV = os.path.join(SOLVERS, "sgd_inv.log")
EXP = os.path.join(SOLVERS, "sgd_exp.log")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_stats(path):
    """(width, height, distinct colours) of a PNG, read back with matplotlib."""
    import matplotlib.image
    import numpy as np
    img = matplotlib.image.imread(path)
    flat = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    return img.shape[1], img.shape[0], len(np.unique(flat, axis=0))


def test_plot_one_log(tmp_path):
    out = str(tmp_path / "one.png")
    assert plot.plot_logs([INV], out) == out
    with open(out, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    w, h, ncolors = _png_stats(out)
    assert w > 1000 and h > 400
    assert ncolors > 20            # lines, text and antialiasing, not a blank canvas
    assert os.path.getsize(out) > 20000


def test_plot_several_logs_and_formats(tmp_path):
    out = str(tmp_path / "two.svg")
    plot.plot_logs([INV, EXP], out, title="inv vs exp")
    text = open(out).read()
    assert "<svg" in text
    for name in ("sgd_inv.log", "sgd_exp.log", "inv vs exp", "Learning rate",
                 "Test accuracy", "train loss", "test loss"):
        assert name in text, name


def test_same_base_names_get_distinct_labels(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "train.log").write_text(open(INV).read())
    assert plot._labels([str(tmp_path / "a" / "train.log"), str(tmp_path / "b" / "train.log")]) \
        == [os.path.join("a", "train.log"), os.path.join("b", "train.log")]


def test_lr_axis_is_log_when_it_spans_decades(tmp_path, monkeypatch):
    lines = ["I1123 10:00:00.0 1 s.cpp:1] Solving"]
    for it, lr in enumerate([1.0, 0.1, 0.01, 0.001]):
        lines += ["I1123 10:00:0%d.0 1 s.cpp:1] Iteration %d (1 iter/s), loss = %g" % (it, it, 1.0 / (it + 1)),
                  "I1123 10:00:0%d.1 1 s.cpp:1] Iteration %d, lr = %g" % (it, it, lr)]
    log = tmp_path / "decay.log"
    log.write_text("\n".join(lines) + "\n")
    scales = []
    from matplotlib.figure import Figure
    real = Figure.savefig

    def spy(fig, *a, **k):
        scales.extend(ax.get_yscale() for ax in fig.axes)
        return real(fig, *a, **k)
    monkeypatch.setattr(Figure, "savefig", spy)
    plot.plot_logs([str(log)], str(tmp_path / "d.png"))
    assert scales == ["linear", "linear", "log"]
    scales.clear()
    plot.plot_logs([INV], str(tmp_path / "e.png"))
    assert scales == ["linear", "linear", "linear"]


def test_errors(tmp_path):
    with pytest.raises(LogParseError, match="cannot read log"):
        plot.plot_logs([str(tmp_path / "missing.log")], str(tmp_path / "x.png"))
    empty = tmp_path / "empty.log"
    empty.write_text("I1123 10:00:00.0 1 caffe.cpp:1] Batch 0, accuracy = 0.5\n")
    with pytest.raises(LogParseError, match="no training iterations in .*empty.log"):
        plot.plot_logs([str(empty)], str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_cli_output_positional_or_flag(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli.main(["plot", INV, str(a)]) == 0 and a.stat().st_size > 0
    assert cli.main(["plot", INV, EXP, "-o", str(b)]) == 0 and b.stat().st_size > 0
    args = cli.build_parser().parse_args(["plot", INV, "--output", "c.pdf"])
    assert args.logs == [INV] and args.output == "c.pdf"


def test_cli_errors(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "plot", *args],
                              capture_output=True, text=True, cwd=ROOT)
    out = run(INV)                                       # no output image
    assert out.returncode == 1 and "no output image" in out.stderr
    out = run(str(tmp_path / "nope.log"), str(tmp_path / "o.png"))
    assert out.returncode == 1 and "nope.log" in out.stderr
    assert "Traceback" not in out.stderr
    assert cli.main(["plot", INV, "-o", str(tmp_path / "out.txt")]) == 1
