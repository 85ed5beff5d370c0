"""CUDA kernels for the hot paths of the GPU backend, one ``.cu`` file per
layer family, and how they are compiled and launched.

    source.py      the sources and their kernels' signatures (every launch
                   argument is checked against them)
    loader.py      NVRTC compilation through CuPy (cached per device) and
                   launches with Caffe's grid rule
    emulation.py   the same kernels compiled for the host and run on the CPU
                   (``emulate()``), how they are proven without a GPU
    common.cuh     the prelude of every family (index_t, the grid-stride loop)
    cuda_host.h    CUDA's built-ins for the host compiler
    blas.py        GEMM / GEMV that accumulate in place (cuBLAS through CuPy, beta = 1)
    <family>.py    a family's launches where a caller needs several steps (arrays in,
                   arrays out): im2col, pooling, lrn, copy, neuron, normalization,
                   softmax, loss, accuracy, eltwise for the layers; quant, bitpack,
                   solver for quant/, deploy/bitops.py and solvers/fused.py

A layer asks ``active(x)`` whether to take its kernel path: on a CuPy array,
or on a NumPy array inside ``emulate()``; then ``launch(family, kernel, n,
*args)``. Kernels are named after what they compute (``lowbit_relu_fwd``).

``DEVICE_ONLY`` lists, in one place, the kernels that need block-level
synchronisation; they sit inside ``#ifndef LOWBIT_HOST`` and wait for a
device. Every other kernel is a grid-stride loop whose threads are independent.
"""
import numpy as np

from ..core import backend
from .emulation import emulate, enabled as emulated
from .loader import THREADS, grid, launch
from .source import families

# family -> kernels that use __shared__ / __syncthreads (run on a device only)
DEVICE_ONLY = {}

__all__ = ["active", "launch", "emulate", "emulated", "grid", "THREADS", "families",
           "DEVICE_ONLY"]


def active(*arrays):
    """True when the layer should take its kernel path for ``arrays``: they
    live on the GPU, or the kernels are emulated on the CPU."""
    return emulated() or backend.get_array_module(*arrays) is not np
