"""Trained-looking statistics for a randomly initialised net: BatchNorm's
stored mean and variance from the net's own pre-activations (shifted, so that
none sits exactly on 0, as after training on other data), a Scale near 1.
Used by the deploy and quantized-export tests."""


def calibrate_layer(net, i, layer, rng):
    """Set layer ``i``'s BatchNorm or Scale blobs from its bottom (already
    computed by the forward of the layers before it)."""
    if layer.type == "BatchNorm":
        blob = net._blobs[net._bottom_id_vecs[i][0]].data
        axes = (0,) + tuple(range(2, blob.ndim))
        layer.blobs[0].data[...] = (blob.mean(axis=axes)
                                    + 0.1 * rng.standard_normal(layer.blobs[0].count)) * 2
        layer.blobs[1].data[...] = (blob.var(axis=axes) + 0.01) * 2
        layer.blobs[2].data[...] = 2
    if layer.type == "Scale":
        layer.blobs[0].data[...] = rng.uniform(0.5, 1.5, layer.blobs[0].count)
        if len(layer.blobs) > 1:
            layer.blobs[1].data[...] = rng.standard_normal(layer.blobs[1].count) * 0.1
