"""Official Caffe's ``caffe time`` as a subprocess (bench/bench_cpu.py).

The binary is built by ``../shared/refcaffe/build.sh`` (official BVLC Caffe
9b89154, CPU only, OpenBLAS) into ``$REFCAFFE_HOME`` (default
``~/.cache/refcaffe``): ``caffe/build/tools/caffe``. ``caffe time`` builds the
net from the prototxt (fillers, no weights file), runs one forward and backward
untimed, then per iteration every layer's Forward and every layer's Backward
with ``bottom_need_backward``, and logs (glog, on stderr):

    Iteration: 1 forward-backward time: 512 ms.
        conv1\tforward: 21.3 ms.
        conv1\tbackward: 30.1 ms.
    Average Forward-Backward: 512 ms.

Its Input layers are never filled (zeros); the time of the GEMMs does not
depend on the values.
"""
import os
import re
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "refcaffe", "build.sh"))
NOT_BUILT = "Caffe: not built; run ../shared/refcaffe/build.sh"

_ITER = re.compile(r"Iteration: (\d+) forward-backward time: ([0-9.eE+-]+) ms")
_LAYER = re.compile(r"\]\s*(\S+)\s+(forward|backward): ([0-9.eE+-]+) ms")
_AVG = re.compile(r"Average Forward-Backward: ([0-9.eE+-]+) ms")


def default_binary():
    home = os.environ.get("REFCAFFE_HOME", os.path.expanduser("~/.cache/refcaffe"))
    return os.path.join(home, "caffe", "build", "tools", "caffe")


def find_binary(path=None):
    """The caffe binary (``path``, or the default), or None when it is not an
    executable file."""
    path = os.path.expanduser(path) if path else default_binary()
    if os.path.isdir(path):
        path = os.path.join(path, "build", "tools", "caffe")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def parse_time(text):
    """{'iters': [seconds per iteration], 'average': seconds or None,
    'layers': {name: [forward s, backward s]}} from ``caffe time``'s log."""
    iters = [float(m.group(2)) / 1000.0 for m in _ITER.finditer(text)]
    layers = {}
    for m in _LAYER.finditer(text):
        entry = layers.setdefault(m.group(1), [0.0, 0.0])
        entry[0 if m.group(2) == "forward" else 1] = float(m.group(3)) / 1000.0
    avg = _AVG.search(text)
    return {"iters": iters, "average": float(avg.group(1)) / 1000.0 if avg else None,
            "layers": layers}


class CaffeRunner:
    """``caffe time`` on one prototxt text, ``threads`` OpenBLAS threads."""

    def __init__(self, binary, prototxt_text, threads, timeout=1800):
        self.binary = binary
        self.threads = threads
        self.timeout = timeout
        fd, self.path = tempfile.mkstemp(suffix=".prototxt", prefix="bench_caffe_")
        with os.fdopen(fd, "w") as f:
            f.write(prototxt_text)

    def close(self):
        if self.path and os.path.exists(self.path):
            os.remove(self.path)
        self.path = None

    def run(self, iterations):
        """One ``caffe time`` run: parse_time's dict; raises RuntimeError with
        the log's tail when Caffe fails."""
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(self.threads)
        env["GLOG_minloglevel"] = "0"
        cmd = [self.binary, "time", "-model", self.path, "-phase", "TRAIN",
               "-iterations", str(int(iterations))]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=self.timeout)
        out = parse_time(proc.stdout)
        if proc.returncode != 0 or not out["iters"]:
            tail = "\n".join(proc.stdout.strip().splitlines()[-5:])
            raise RuntimeError("caffe time failed (exit %d):\n%s" % (proc.returncode, tail))
        return out
