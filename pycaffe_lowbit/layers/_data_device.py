"""The data layers' GPU path: batches travel as uint8 crops.

When the layer's tops live on the GPU (or the kernels are emulated on the
CPU, ``kernels.emulate()``), its reader hands out ``CropBatch``es instead of
float32 batches: the uint8 crops (unmirrored), the mirror flags and the crop
offsets, drawn exactly as for the host transform. ``DeviceFeed.apply`` puts
one into the float top: on a GPU the crops are written by the reader into
pinned host buffers, copied to the device asynchronously on their own stream
(a quarter of the float32 bytes), and kernels/data_transform.cu applies the
mirror, the mean and the scale there, on the net's stream once the copy's
event has fired. Under ``emulate()`` the same kernel runs on the host on the
NumPy crops. When batch k + 1 is already prefetched at the end of batch k's
forward, its copy starts then (``Prefetcher.peek``), overlapping iteration k.
"""
import numpy as np

from ..core import backend
from ..kernels import data_transform


class CropBatch:
    """A batch of uint8 crops: crops (N, C, h, w), flip (N,), offsets (N, 2)."""
    __slots__ = ("crops", "flip", "offsets")

    def __init__(self, crops, flip, offsets):
        self.crops, self.flip, self.offsets = crops, flip, offsets

    @property
    def shape(self):
        return self.crops.shape


def pinned_empty(shape, dtype):
    """A NumPy array in page-locked host memory (asynchronous copies need it)."""
    cupy = backend.cupy()
    count = int(np.prod(shape))
    memory = cupy.cuda.alloc_pinned_memory(max(count * np.dtype(dtype).itemsize, 1))
    return np.frombuffer(memory, dtype, count).reshape(shape)


class DeviceFeed:
    """Applies a layer's transform_param to CropBatches on the device."""

    def __init__(self, transformer):
        self.transformer = transformer
        self._stream = None
        self._pending = None        # (batch, device arrays, copy-done event)
        self._mean = None           # ((array module, dtype), the mean file there)

    @staticmethod
    def on_device(out):
        """Whether ``out`` is a device array (not the emulated host path)."""
        return not isinstance(out, np.ndarray)

    def upload(self, batch):
        """Start the asynchronous copy of ``batch`` (a GPU is in use)."""
        cupy = backend.cupy()
        if self._stream is None:
            self._stream = cupy.cuda.Stream(non_blocking=True)
        with self._stream:
            arrays = tuple(cupy.asarray(a) for a in (batch.crops, batch.flip, batch.offsets))
            done = self._stream.record()
        self._pending = (batch, arrays, done)

    def apply(self, batch, out):
        """out = the transform of ``batch``."""
        if not self.on_device(out):                 # emulated: the kernel on the host
            return self._launch(batch.crops, batch.flip, batch.offsets, out)
        if self._pending is None or self._pending[0] is not batch:
            self.upload(batch)
        _, arrays, done = self._pending
        backend.cupy().cuda.get_current_stream().wait_event(done)
        self._launch(*arrays, out)
        done.synchronize()        # the host buffers are free to reuse from here
        self._pending = None
        return out

    def _launch(self, crops, flip, offsets, out):
        t = self.transformer
        mean = None
        if t.mean is not None:
            xp = backend.get_array_module(out)
            key = (xp.__name__, out.dtype.str)
            if self._mean is None or self._mean[0] != key:
                self._mean = (key, backend.to_device(t.mean.astype(out.dtype), xp))
            mean = self._mean[1]
        return data_transform.transform(crops, flip, offsets, mean, t.mean_values,
                                        float(t.scale), out)
