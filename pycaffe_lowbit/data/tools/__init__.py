"""Caffe's data tools, as ``lowbit-caffe`` subcommands (see ``cli/data.py``).

- ``imageset.convert_imageset``: an image folder and a list file -> LMDB/LevelDB of Datums
- ``image_mean.compute_image_mean``: a Datum database -> mean BlobProto (.binaryproto)
- ``cifar.convert_cifar``: CIFAR-10/100 (python or binary distribution) -> train/test LMDBs + mean
- ``mnist.convert_mnist``: IDX image and label files (gzipped or not) -> LMDB

Each writes what Caffe's tool writes (keys, Datum fields, transaction size,
log lines) and fails with a one-line ``DataError`` that names the file and
record, leaving no half-written database behind.
"""
