"""copy.cu: Concat, Slice, Crop, Tile and SPP's concatenation take their
kernels and equal the NumPy layers (every axis, odd sizes, empty batch;
float32 and float64); every kernel of the family is used."""
import numpy as np
import pytest

from support.kernel_coverage import every_kernel
from support.kernel_layers import assert_kernels_equal_numpy

RNG = np.random.default_rng(3)
CASES = [  # (layer text, bottom shapes, tops)
    ('type: "Concat" concat_param { axis: 1 }', [(2, 3, 4), (2, 1, 4), (2, 5, 4)], 1),
    ('type: "Concat" concat_param { axis: 0 }', [(1, 3, 2), (3, 3, 2)], 1),
    ('type: "Concat" concat_param { axis: -1 }', [(2, 3, 1), (2, 3, 4)], 1),
    ('type: "Concat"', [(0, 3, 2), (0, 2, 2)], 1),
    ('type: "Slice" slice_param { axis: 1 slice_point: 1 slice_point: 4 }', [(2, 7, 3)], 3),
    ('type: "Slice" slice_param { axis: 2 }', [(2, 3, 6)], 2),
    ('type: "Slice" slice_param { axis: 0 slice_point: 2 }', [(3, 2, 5)], 2),
    ('type: "Slice" slice_param { axis: 1 }', [(0, 4, 2)], 2),
    ('type: "Crop" crop_param { axis: 2 offset: 1 offset: 2 }', [(2, 3, 7, 6), (1, 1, 4, 3)],
     1),
    ('type: "Crop" crop_param { axis: 1 offset: 1 }', [(2, 4, 5, 6), (2, 2, 3, 4)], 1),
    ('type: "Crop" crop_param { axis: 0 }', [(3, 4, 5), (2, 3, 5)], 1),
    ('type: "Crop" crop_param { axis: 2 offset: 1 }', [(0, 2, 5, 5), (0, 2, 3, 3)], 1),
    ('type: "Tile" tile_param { axis: 1 tiles: 3 }', [(2, 3, 4)], 1),
    ('type: "Tile" tile_param { axis: 0 tiles: 2 }', [(3, 2)], 1),
    ('type: "Tile" tile_param { axis: -1 tiles: 5 }', [(2, 3, 1)], 1),
    ('type: "Tile" tile_param { axis: 1 tiles: 2 }', [(0, 3)], 1),
    ('type: "SPP" spp_param { pyramid_height: 3 pool: MAX }', [(2, 3, 9, 7)], 1),
    ('type: "SPP" spp_param { pyramid_height: 2 pool: AVE }', [(1, 2, 6, 6)], 1),
    ('type: "SPP" spp_param { pyramid_height: 1 pool: MAX }', [(2, 2, 5, 4)], 1),
    ('type: "SPP" spp_param { pyramid_height: 2 pool: AVE }', [(0, 2, 6, 6)], 1),
]


def _check(text, shapes, tops, dtype):
    bottoms = [RNG.standard_normal(s) for s in shapes]
    return assert_kernels_equal_numpy(text, bottoms, n_top=tops, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("text, shapes, tops", CASES)
def test_kernels_equal_numpy(text, shapes, tops, dtype):
    _check(text, shapes, tops, dtype)


def test_every_copy_kernel_is_used():
    seen = set()
    for text, shapes, tops in CASES:
        seen |= _check(text, shapes, tops, np.float64)
    assert seen >= every_kernel("copy")
