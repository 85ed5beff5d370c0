"""Sphinx configuration: the guides, the command-line reference generated from
the parsers, and the API from the docstrings. Built in CI with warnings as
errors, and every example run by the doctest builder:

    sphinx-build -W -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest
"""
import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path.insert(0, os.path.join(DOCS, "_ext"))
sys.path.insert(0, ROOT)

import pycaffe_lowbit  # noqa: E402

project = "pycaffe_lowbit"
author = "the pycaffe_lowbit authors"
copyright = "the pycaffe_lowbit authors"
version = release = pycaffe_lowbit.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "lowbit_docs"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "pycaffe_lowbit %s" % release
html_theme_options = {"description": "Caffe in Python for low-bit networks"}

autodoc_default_options = {"members": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"

# The examples run from the repository root (they read models/), quietly, in
# a scratch folder they may write to; "import pycaffe_lowbit as caffe" as in
# every guide.
doctest_global_setup = """
import os, tempfile
import numpy as np
os.chdir(%r)
import pycaffe_lowbit as caffe
scratch = tempfile.mkdtemp(prefix="lowbit-docs-")
""" % ROOT
doctest_global_cleanup = """
import shutil
shutil.rmtree(scratch, ignore_errors=True)
"""
