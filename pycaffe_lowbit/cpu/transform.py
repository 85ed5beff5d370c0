"""The Data layer's per-image transform as one compiled pass (Numba);
``data.transformer.DataTransformer.transform_into`` is the NumPy reference.

    crop_transform(image, h_off, w_off, flip, mean, scale, out):
        out[c, i, j'] = (float32(image[c, h_off + i, w_off + j])
                         - mean[c, h_off + i, w_off + j]) * scale
    crop_transform_channels(image, h_off, w_off, flip, channel_mean, scale, out):
        the same with mean[c, ...] = channel_mean[c] ((C,) float32; zeros for none)

with j' = w - 1 - j when ``flip`` (mirrored), else j. image (C, H, W) of any
real dtype (uint8 pixels, float Datums); out float32 (C, h, w). The same
float32 subtraction then product as the reference, so results are bit-equal
to it; a mean file is read at the source pixel, as Caffe's data_transformer
does, mirrored or not. One pass over the crop (the reference makes up to
three: a flip, the mixed-type subtraction, the scale); the loops over a row
have no branch, so LLVM vectorizes the conversion and arithmetic.
"""
import numpy as np

from .jit import njit


@njit
def crop_transform(image, h_off, w_off, flip, mean, scale, out):
    channels, h, w = out.shape
    for c in range(channels):
        for i in range(h):
            src = image[c, h_off + i, w_off:w_off + w]
            m = mean[c, h_off + i, w_off:w_off + w]
            dst = out[c, i]
            if flip:
                for j in range(w):
                    dst[w - 1 - j] = (np.float32(src[j]) - m[j]) * scale
            else:
                for j in range(w):
                    dst[j] = (np.float32(src[j]) - m[j]) * scale
    return out


@njit
def crop_transform_channels(image, h_off, w_off, flip, channel_mean, scale, out):
    channels, h, w = out.shape
    for c in range(channels):
        m = channel_mean[c]
        for i in range(h):
            src = image[c, h_off + i, w_off:w_off + w]
            dst = out[c, i]
            if flip:
                for j in range(w):
                    dst[w - 1 - j] = (np.float32(src[j]) - m) * scale
            else:
                for j in range(w):
                    dst[j] = (np.float32(src[j]) - m) * scale
    return out


def channel_mean(values, channels):
    """Per-channel mean ``values`` ((C,), (1,) or empty for none) as (C,) float32."""
    values = np.asarray(values, np.float32)
    if values.size == 0:
        return np.zeros(channels, np.float32)
    return np.ascontiguousarray(np.broadcast_to(values, (channels,)))
