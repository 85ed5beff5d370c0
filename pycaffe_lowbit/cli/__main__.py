"""``python -m pycaffe_lowbit.cli``: the ``lowbit-caffe`` command."""
import sys

from .main import main

sys.exit(main())
