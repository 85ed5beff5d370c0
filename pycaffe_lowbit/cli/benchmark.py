"""``lowbit-caffe time``: Caffe's layer-by-layer benchmark of a model.

Runs one forward and backward, then ``-iterations`` timed passes, each layer
timed on its own, and prints Caffe's report (caffe.cpp's ``time``): the time of
every iteration, the average forward and backward time per layer, and the
totals in whole milliseconds.

On the GPU, as Caffe's Timer, each span is measured with CUDA events (recorded
on the stream, then synchronised): kernels run asynchronously, so the host's
clock alone would time their launches, not their work.
"""
import time

from google.protobuf import text_format

from ..core import backend
from ..logs.progress import iterate
from ..proto import caffe_pb2
from ..pycaffe.pycaffe import Net
from .common import Command, add_caffe_flags, load_model, use_device


def cmd_time(args, log):
    if not args.model:
        raise SystemExit("lowbit-caffe time: need a model definition to time (-model)")
    use_device(args.gpu, log)
    phase = caffe_pb2.TEST if args.phase == "TEST" else caffe_pb2.TRAIN
    stages = [s for s in args.stage.split(",") if s]
    net = Net(load_model(args), phase, level=args.level, stages=stages,
              weights=args.weights or None)
    log.info("%s", text_format.MessageToString(net._param).rstrip())
    log.info("Performing Forward")
    loss = net.forward_prefilled()
    log.info("Initial loss: %g", loss)
    log.info("Performing Backward")
    net.backward_all()
    n_layers = len(net.layers)
    fwd = [0.0] * n_layers
    bwd = [0.0] * n_layers
    log.info("*** Benchmark begins ***")
    log.info("Testing for %d iterations.", args.iterations)
    total = Timer()
    for it in iterate(range(1, args.iterations + 1), args.progress, args.iterations, "time"):
        iteration = Timer()
        for i in range(n_layers):
            layer = Timer()
            net.forward_from_to(i, i)
            fwd[i] += layer.seconds()
        for i in range(n_layers - 1, -1, -1):
            layer = Timer()
            bottom = [net._blobs[k] for k in net._bottom_id_vecs[i]]
            top = [net._blobs[k] for k in net._top_id_vecs[i]]
            net.layers[i].backward(top, net.bottom_need_backward(i), bottom)
            bwd[i] += layer.seconds()
        log.info("Iteration: %d forward-backward time: %d ms.", it,
                 int(iteration.seconds() * 1000))
    total_ms = int(total.seconds() * 1000)   # whole ms, as Caffe's timer
    log.info("Average time per layer: ")
    iters = max(args.iterations, 1)
    for i, name in enumerate(net._layer_names):
        log.info("%10s\tforward: %g ms.", name, fwd[i] * 1000 / iters)
        log.info("%10s\tbackward: %g ms.", name, bwd[i] * 1000 / iters)
    log.info("Average Forward pass: %g ms.", sum(fwd) * 1000 / iters)
    log.info("Average Backward pass: %g ms.", sum(bwd) * 1000 / iters)
    log.info("Average Forward-Backward: %g ms.", total_ms / iters)
    log.info("Total Time: %d ms.", total_ms)
    log.info("*** Benchmark ends ***")
    return 0


class Timer:
    """Caffe's Timer, started when made: the host's clock on the CPU; on the
    GPU a pair of CUDA events on the current stream, ``seconds()`` waiting for
    the second one (the work launched in between is then done)."""

    def __init__(self):
        self._cuda = backend.cupy().cuda if backend.mode() == "gpu" else None
        if self._cuda is not None:
            self._start = self._cuda.Event()
            self._start.record()
        else:
            self._start = time.perf_counter()

    def seconds(self):
        """Seconds since the timer was made."""
        if self._cuda is None:
            return time.perf_counter() - self._start
        end = self._cuda.Event()
        end.record()
        end.synchronize()
        return self._cuda.get_elapsed_time(self._start, end) / 1000.0


COMMANDS = {"time": Command(cmd_time, "benchmark the execution time of a model, layer by layer",
                            add_caffe_flags)}
