"""``import pycaffe_lowbit`` stays light (issue 24): Numba/LLVM, OpenCV and
h5py load when a compiled kernel, an image or an HDF5 file is first needed.
(The resident-memory figures themselves, against official Caffe, are
bench/bench_memory.py's: a same-run comparison, not a test.)"""
import subprocess
import sys

HEAVY = ("numba", "llvmlite", "cv2", "h5py", "scipy", "matplotlib", "onnx", "cupy", "mpi4py")


def _loaded_after(code):
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\n"
                          "print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"],
                         check=True, capture_output=True, text=True).stdout.split()
    return set(out)


def test_import_loads_none_of_the_heavy_libraries():
    assert not _loaded_after("import pycaffe_lowbit") & set(HEAVY)


def test_building_a_plain_net_loads_none_of_them_either():
    code = ("import pycaffe_lowbit as caffe, numpy as np\n"
            "from pycaffe_lowbit.formats.text import parse_net_text\n"
            "p = parse_net_text('layer { name: \"x\" type: \"Input\" top: \"x\" "
            "input_param { shape { dim: 2 dim: 3 } } } layer { name: \"ip\" "
            "type: \"InnerProduct\" bottom: \"x\" top: \"y\" inner_product_param "
            "{ num_output: 4 } }')\n"
            "net = caffe.Net(p, caffe.TEST)\n"
            "net.forward()\n")
    assert not _loaded_after(code) & {"numba", "llvmlite", "cv2", "h5py"}


def test_a_kernel_that_needs_numba_loads_it_then():
    code = ("import numpy as np\n"
            "from pycaffe_lowbit.cpu import jit, norm\n"
            "x = np.ones((2, 3, 4), np.float32)\n"
            "assert 'numba' not in __import__('sys').modules\n"
            "assert jit.runs(x)\n")
    assert "numba" in _loaded_after(code)


def test_lazy_modules_load_on_first_use():
    code = ("from pycaffe_lowbit.data import datum\n"
            "import sys\n"
            "assert 'cv2' not in sys.modules\n"
            "datum.cv2.IMREAD_COLOR\n")
    assert "cv2" in _loaded_after(code)
