"""Hypothesis strategies for the data layers (Data, ImageData, HDF5Data,
WindowData, MemoryData, HDF5Output) and the Python layer. The files they read
are written once per process into a temporary folder (``files()``); the
strategies vary the parameters (batch size, transform, crop, skip...) and,
now and then, point at a missing file."""
import atexit
import os
import shutil
import tempfile

import cv2
import h5py
import numpy as np
from hypothesis import strategies as st

from pycaffe_lowbit.data.datum import array_to_datum
from pycaffe_lowbit.data.tools.writer import DatumWriter

from .cases_neuron import rarely, rng_of, shape
from .properties import Case, distinct

_FILES = {}


def files():
    """{name: path} of the fixture files, written on first use."""
    if _FILES:
        return _FILES
    root = tempfile.mkdtemp(prefix="lowbit_property_data_")
    atexit.register(shutil.rmtree, root, True)
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 3, 6, 7), dtype=np.uint8)
    with DatumWriter(os.path.join(root, "lmdb"), "lmdb", log_commits=False) as writer:
        for i, image in enumerate(images):
            writer.put("%05d" % i, array_to_datum(image, i % 3))
    lines = []
    for i, image in enumerate(images[:4]):
        name = "img%d.png" % i
        cv2.imwrite(os.path.join(root, name), image.transpose(1, 2, 0))
        lines.append("%s %d" % (name, i % 3))
    with open(os.path.join(root, "list.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with h5py.File(os.path.join(root, "data.h5"), "w") as f:
        f["data"] = rng.standard_normal((5, 2, 3))
        f["label"] = np.arange(5.0)
    with open(os.path.join(root, "h5list.txt"), "w") as f:
        f.write(os.path.join(root, "data.h5") + "\n")
    windows = ["# 0", os.path.join(root, "img0.png"), "3 6 7", "3",
               "0 0.1 0 0 3 3", "1 0.8 1 1 5 4", "2 0.6 2 0 6 5"]
    with open(os.path.join(root, "windows.txt"), "w") as f:
        f.write("\n".join(windows) + "\n")
    _FILES.update(root=root, lmdb=os.path.join(root, "lmdb"),
                  list=os.path.join(root, "list.txt"), h5list=os.path.join(root, "h5list.txt"),
                  windows=os.path.join(root, "windows.txt"))
    return _FILES


def _source(draw, key):
    return os.path.join(files()["root"], "nope") if rarely(draw, 7) else files()[key]


def _transform(draw, crop_max=7):
    parts = []
    if draw(st.booleans()):
        parts.append("crop_size: %d" % draw(st.integers(0, crop_max + 1)))
    if draw(st.booleans()):
        parts.append("mirror: true")
    if draw(st.booleans()):
        parts.append("scale: %g" % draw(st.sampled_from([0.5, 0.00390625])))
    if draw(st.booleans()):
        parts.append(" ".join("mean_value: %d" % draw(st.integers(0, 255))
                              for _ in range(draw(st.sampled_from([1, 3, 2])))))
    return "transform_param { %s }" % " ".join(parts)


def _tops(draw):
    return draw(st.integers(1, 2))


@st.composite
def data(draw):
    text = "data_param { source: '%s' backend: LMDB batch_size: %d rand_skip: %d } %s" % (
        _source(draw, "lmdb"), draw(st.sampled_from([2, 1, 4, 0])), draw(st.integers(0, 3)),
        _transform(draw))
    return Case(text, [], n_top=_tops(draw), backward=False)


@st.composite
def image_data(draw):
    resize = ""
    if draw(st.booleans()):
        resize = "new_height: %d new_width: %d" % (draw(st.integers(0, 8)),
                                                    draw(st.integers(0, 8)))
    text = ("image_data_param { source: '%s' root_folder: '%s/' batch_size: %d "
            "shuffle: %s is_color: %s %s } %s"
            % (_source(draw, "list"), files()["root"], draw(st.sampled_from([2, 1, 3, 0])),
               draw(st.sampled_from(["true", "false"])), draw(st.sampled_from(["true", "false"])),
               resize, _transform(draw)))
    return Case(text, [], n_top=_tops(draw), backward=False)


@st.composite
def hdf5_data(draw):
    text = "hdf5_data_param { source: '%s' batch_size: %d shuffle: %s }" % (
        _source(draw, "h5list"), draw(st.sampled_from([2, 1, 5, 7, 0])), draw(st.sampled_from(["true",
                                                                                  "false"])))
    names = draw(st.sampled_from([("data", "label"), ("data",), ("label", "data"),
                                  ("data", "nope")]))     # tops name the datasets
    return Case(text, [], n_top=len(names), top_names=names, backward=False,
                fields=("top",))


@st.composite
def window_data(draw):
    text = ("window_data_param { source: '%s' batch_size: %d fg_threshold: %g "
            "bg_threshold: %g fg_fraction: %g context_pad: %d crop_mode: '%s' } "
            "transform_param { crop_size: %d mirror: %s }"
            % (_source(draw, "windows"), draw(st.sampled_from([2, 1, 4, 0])),
               draw(st.sampled_from([0.5, 0.7])), draw(st.sampled_from([0.5, 0.3])),
               draw(st.sampled_from([0.25, 0.5])), draw(st.sampled_from([0, 1, 2])),
               draw(st.sampled_from(["warp", "square", "nope"])),
               draw(st.sampled_from([5, 4, 3, 2, 0])),
               draw(st.sampled_from(["true", "false"]))))
    return Case(text, [], n_top=2, backward=False)


@st.composite
def memory_data(draw):
    rng = rng_of(draw)
    dims = [draw(st.sampled_from([2, 1, 3, 0])) for _ in range(4)]
    text = "memory_data_param { batch_size: %d channels: %d height: %d width: %d }" % tuple(dims)
    rows = max(dims[0], 1) * draw(st.integers(1, 2))
    arrays = (rng.standard_normal((rows,) + tuple(dims[1:])), np.arange(float(rows)))

    def feed(layer):         # net.set_input_arrays
        layer.reset(*arrays)
    return Case(text, [], n_top=2, backward=False, prepare=feed)


@st.composite
def hdf5_output(draw):
    rng = rng_of(draw)
    n = draw(st.integers(1, 3))
    data_, = distinct(rng, (n,) + shape(draw, min_axes=0, max_axes=3))
    label = np.arange(float(n + draw(st.sampled_from([0, 0, 1]))))
    name = os.path.join(files()["root"], "out_%d.h5" % draw(st.integers(0, 3)))
    return Case("hdf5_output_param { file_name: '%s' }" % name, [data_, label], n_top=0,
                backward=False)


@st.composite
def python(draw):
    """The identity (``support.faults.NanAt`` that never poisons)."""
    rng = rng_of(draw)
    x, = distinct(rng, shape(draw))
    return Case("python_param { module: 'support.faults' layer: 'NanAt' "
                "param_str: 'forward:0' }", [x])


CASES = {
    "Data": data(),
    "ImageData": image_data(),
    "HDF5Data": hdf5_data(),
    "WindowData": window_data(),
    "MemoryData": memory_data(),
    "HDF5Output": hdf5_output(),
    "Python": python(),
}
