"""File formats: BlobProto, .caffemodel, prototxt text, legacy upgrade, HDF5."""
