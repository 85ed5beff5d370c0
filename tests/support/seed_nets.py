"""The seed nets of ../shared/seeds with their data layers replaced by Input
layers of the shapes those layers would deliver (batch 2), so they build and
run without the datasets."""
from pycaffe_lowbit.proto import caffe_pb2

DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData"}
BATCH = 2


def _image_shape(path, layer):
    """(C, H, W) of the images a data layer of this seed file would deliver."""
    crop = layer.transform_param.crop_size
    lower = path.lower()
    if "mnist" in lower:
        return (1, 28, 28)
    if "cifar" in lower:
        return (3, crop or 32, crop or 32)
    return (3, crop or 227, crop or 227)


def with_inputs(path, param):
    """A copy of ``param`` whose data layers are Input layers."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    for layer in out.layer:
        if layer.type not in DATA_TYPES:
            continue
        shape = _image_shape(path, layer)
        tops = list(layer.top)
        include = [r for r in layer.include]
        exclude = [r for r in layer.exclude]
        name = layer.name
        layer.Clear()
        layer.name, layer.type = name, "Input"
        layer.top.extend(tops)
        layer.include.extend(include)
        layer.exclude.extend(exclude)
        layer.input_param.shape.add().dim.extend((BATCH,) + shape)
        for _ in tops[1:]:
            layer.input_param.shape.add().dim.extend([BATCH])
    for layer in out.layer:
        if layer.type == "Input" and layer.name not in {l.name for l in param.layer
                                                         if l.type in DATA_TYPES}:
            for shape in layer.input_param.shape:
                if len(shape.dim):
                    shape.dim[0] = BATCH
    return out
