"""Launches of data_transform.cu: a data layer's batch of uint8 crops to its
float top on the device (mirror, mean, scale), as data/transformer.py on the
host. Arrays are those of the device (or NumPy inside ``emulate()``).
"""
import numpy as np

from ..core import backend
from . import loader

FAMILY = "data_transform"


def transform(crops, flip, offsets, mean, mean_values, scale, out):
    """out (batch, C, h, w) float = (mirror(crops) - mean) * scale.

    crops: uint8 (batch, C, h, w), the unmirrored crops; flip: uint8 (batch,);
    offsets: int64 (batch, 2), each crop's (row, column) in its full image
    (used with a mean file); mean: the mean file (C, H, W) of out's dtype, or
    None; mean_values: 0, 1 or C values (without a mean file)."""
    xp = backend.get_array_module(out)
    dtype = out.dtype
    if mean is not None:
        kind, table = 2, xp.ascontiguousarray(mean, dtype)
        count, mean_h, mean_w = table.size, table.shape[1], table.shape[2]
    elif len(mean_values):
        kind, table = 1, xp.asarray(np.asarray(mean_values, dtype))
        count, mean_h, mean_w = table.size, 1, 1
    else:
        kind, table = 0, xp.zeros(1, dtype)
        count, mean_h, mean_w = 1, 1, 1
    _, channels, h, w = crops.shape
    loader.launch(FAMILY, "lowbit_data_transform", out.size, out.size,
                  xp.ascontiguousarray(crops), channels, h, w,
                  xp.ascontiguousarray(flip, np.uint8), xp.ascontiguousarray(offsets, np.int64),
                  kind, table, count, mean_h, mean_w, scale, out)
    return out
