"""Module paths that moved still import: ``pycaffe_lowbit.io.<format>`` is
``pycaffe_lowbit.formats.<format>`` itself (issue 24), with a DeprecationWarning;
``pycaffe_lowbit.io`` is pycaffe's ``caffe.io`` and nothing else."""
import importlib
import subprocess
import sys

import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit import _legacy_paths


@pytest.mark.parametrize("name", _legacy_paths.MOVED)
def test_old_format_paths_are_the_new_modules(name):
    new = importlib.import_module("pycaffe_lowbit.formats." + name)
    code = ("import warnings, pycaffe_lowbit.formats.%s as new\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import pycaffe_lowbit.io.%s as old\n"
            "assert old is new, (old, new)\n"
            "assert old.__spec__.name == 'pycaffe_lowbit.formats.%s'\n"
            "assert [str(x.message) for x in w] == "
            "['pycaffe_lowbit.io.%s is now pycaffe_lowbit.formats.%s'], w\n"
            % (name, name, name, name, name))
    subprocess.run([sys.executable, "-c", code], check=True)
    assert new.__name__ == "pycaffe_lowbit.formats." + name


def test_from_old_path_import_a_name():
    out = subprocess.run([sys.executable, "-W", "ignore", "-c",
                          "from pycaffe_lowbit.io.text import read_net_param\n"
                          "print(read_net_param.__module__)"],
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == "pycaffe_lowbit.formats.text"


def test_other_names_under_io_are_not_found():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pycaffe_lowbit.io.no_such_module")


def test_io_is_pycaffes_io_plainly():
    assert caffe.io.__name__ == "pycaffe_lowbit.io"
    assert caffe.io.__file__.endswith("pycaffe_lowbit/io.py")
    for name in ("load_image", "Transformer", "blobproto_to_array", "array_to_datum",
                 "resize_image", "oversample", "datum_to_array"):
        assert callable(getattr(caffe.io, name))
    import pycaffe_lowbit.io as io_module
    assert io_module is caffe.io
