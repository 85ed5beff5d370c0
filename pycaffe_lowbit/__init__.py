"""pycaffe_lowbit: Caffe in Python for low-bit networks; ``import pycaffe_lowbit as caffe``."""
from .version import __version__
from .backend import set_mode_cpu, set_mode_gpu, set_device, set_random_seed
from .blob import Blob
from .layers import Layer, layer_type_list
