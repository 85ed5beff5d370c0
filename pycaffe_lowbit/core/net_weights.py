"""A Net's weights in files: Caffe's .caffemodel (Net::ToProto, CopyTrainedLayersFrom)
and HDF5 weights, and reading the model a Net is built from (a prototxt path or
a NetParameter, upgraded from V0/V1 as Caffe does)."""
from ..formats import caffemodel, text, upgrade, weights
from ..formats.blobproto import blob_to_proto
from ..proto import caffe_pb2

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST


class NetWeights:
    """Mixin of ``Net``: its weights from and to files."""

    def copy_from(self, path):
        """Load weights by layer name from a .caffemodel (or .h5); layers absent
        from the file keep theirs."""
        weights.copy_trained_layers(self, path)

    def to_proto(self, write_diff=False):
        """The net as a NetParameter with every layer's blobs (Net::ToProto)."""
        out = caffe_pb2.NetParameter()
        out.name = self.name
        for layer, lp in zip(self.layers, self._param.layer):
            dst = out.layer.add()
            dst.CopyFrom(lp)
            del dst.blobs[:]
            for blob in layer.blobs:
                blob_to_proto(blob, write_diff, dst.blobs.add())
        return out

    def save(self, path):
        """Write the weights as a binary .caffemodel (atomically)."""
        caffemodel.write_net_binary(self.to_proto(), path)

    def save_hdf5(self, path):
        weights.save_hdf5(self, path)

    def load_hdf5(self, path):
        weights.load_hdf5(self, path)


def _parse_net_args(args, phase, weights):
    """pycaffe's overloads: (phase), (weights, phase), (phase, weights=...)."""
    args = list(args)
    if len(args) == 2:
        weights, phase = args
    elif len(args) == 1:
        if isinstance(args[0], str):
            weights = args[0]
        else:
            phase = args[0]
    elif len(args) > 2:
        raise TypeError("Net(model, [weights,] phase): too many arguments")
    if phase is None:
        raise TypeError("Net needs a phase: caffe.TRAIN or caffe.TEST")
    if phase not in (TRAIN, TEST):
        raise ValueError("phase must be caffe.TRAIN (0) or caffe.TEST (1), got %r" % (phase,))
    return phase, weights


def _load_net_param(model):
    if isinstance(model, caffe_pb2.NetParameter):
        param = caffe_pb2.NetParameter()
        param.CopyFrom(model)
        return upgrade.upgrade_net(param, "<NetParameter>")
    return text.read_net_param(model)
