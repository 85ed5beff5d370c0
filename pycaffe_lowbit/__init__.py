"""pycaffe_lowbit: Caffe, in Python, for training and deploying low-bit networks.

Use it as pycaffe::

    import pycaffe_lowbit as caffe
    net = caffe.Net("deploy.prototxt", "weights.caffemodel", caffe.TEST)
    out = net.forward(data=x)
"""
import sys

from .version import __version__
from .core.backend import set_mode_cpu, set_mode_gpu, set_device, set_random_seed, gpu_available
from .core.blob import Blob
from .proto import caffe_pb2
from .layers import layer_type_list
from .layers.python_layer import PyLayer as Layer
from .pycaffe.pycaffe import Net
from . import proto
from .parallel import (set_solver_count, set_solver_rank, set_multiprocess, solver_count,
                       solver_rank)
from .parallel.nccl import NCCL
from .pycaffe.runtime import Timer, init_log, log, has_nccl
from .pycaffe.classifier import Classifier
from .pycaffe.detector import Detector

# pycaffe's ``caffe.layers`` / ``caffe.params`` are NetSpec's L and P. The name
# ``layers`` is also our layer subpackage: NetSpec's L forwards that package's
# names, so ``pycaffe_lowbit.layers.registry`` keeps working. These lines must
# come after every import that first loads the subpackage.
from .pycaffe.net_spec import layers, params, NetSpec, to_proto  # noqa: E402
from .pycaffe import net_spec, coord_map, draw  # noqa: E402
from . import io  # noqa: E402
from . import _legacy_paths  # noqa: E402
from . import solvers  # noqa: E402
from .solvers import (get_solver, SGDSolver, NesterovSolver, AdaGradSolver,  # noqa: E402
                      RMSPropSolver, AdaDeltaSolver, AdamSolver)

# pycaffe's module paths: ``import pycaffe_lowbit.draw`` is pycaffe/draw.py itself.
for _module in (net_spec, coord_map, draw):
    sys.modules[__name__ + "." + _module.__name__.rsplit(".", 1)[1]] = _module
# ``pycaffe_lowbit.io.text`` and the other format modules of earlier releases.
_legacy_paths.install(io)

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST

__all__ = ["Net", "Layer", "Blob", "TRAIN", "TEST", "set_mode_cpu", "set_mode_gpu",
           "set_device", "set_random_seed", "gpu_available", "layer_type_list", "caffe_pb2", "proto",
           "layers", "params", "NetSpec", "to_proto", "net_spec", "coord_map", "io", "draw",
           "solvers", "get_solver", "SGDSolver", "NesterovSolver", "AdaGradSolver",
           "RMSPropSolver", "AdaDeltaSolver", "AdamSolver",
           "set_solver_count", "set_solver_rank", "set_multiprocess", "solver_count",
           "solver_rank", "NCCL", "has_nccl", "Timer", "init_log", "log", "Classifier", "Detector",
           "__version__"]
