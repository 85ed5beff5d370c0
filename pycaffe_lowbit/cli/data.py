"""``lowbit-caffe`` data commands: Caffe's tools with their flags and arguments.

    lowbit-caffe convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME
    lowbit-caffe compute_image_mean [--backend=lmdb] INPUT_DB [OUTPUT_FILE]
    lowbit-caffe convert_cifar [--label=fine|coarse] INPUT_FOLDER OUTPUT_FOLDER [lmdb|leveldb]
    lowbit-caffe convert_mnist [--backend=lmdb] IMAGE_FILE LABEL_FILE DB_NAME
    lowbit-caffe data digits [--out DIR]

Flags take gflags' spellings: ``-backend leveldb``, ``--backend=leveldb``; a
boolean flag is on with ``--gray``, ``--gray=true`` or ``-gray``, and off with
``--nogray`` or ``--gray=false``. The logic lives in ``pycaffe_lowbit/data/tools``
and ``pycaffe_lowbit/data/datasets``; bad input ends with one error line and exit 1.
"""
from .common import Command, bool_flag, flag


def _backend_flag(parser):
    flag(parser, "backend", default="lmdb", choices=["lmdb", "leveldb"],
          help="the database backend (default lmdb; leveldb needs plyvel)")


def _convert_imageset_flags(p):
    p.add_argument("root_folder", help="folder prefixed (as a string: end it with /) "
                                       "to every file of the list")
    p.add_argument("list_file", help="text file, one '<file> <label>' per line")
    p.add_argument("db_name", help="the database to create (must not exist)")
    bool_flag(p, "gray", "treat images as grayscale ones")
    bool_flag(p, "shuffle", "randomly shuffle the order of images and their labels "
                            "(seeded by --shuffle_seed: reproducible, but not the order "
                            "Caffe's std::shuffle gives)")
    flag(p, "shuffle_seed", type=int, default=0, help="seed of --shuffle (default 0)")
    _backend_flag(p)
    flag(p, "resize_width", type=int, default=0, help="width images are resized to")
    flag(p, "resize_height", type=int, default=0, help="height images are resized to")
    bool_flag(p, "check_size", "check that all the images have the same size")
    bool_flag(p, "encoded", "store the encoded image (the file's bytes) in the Datum")
    flag(p, "encode_type", default="",
          help="what type to encode the image as ('png', 'jpg', ...); implies --encoded")


def cmd_convert_imageset(args, log):
    from ..data.tools.imageset import convert_imageset
    convert_imageset(args.root_folder, args.list_file, args.db_name, backend=args.backend,
                     gray=args.gray, shuffle=args.shuffle, resize_height=args.resize_height,
                     resize_width=args.resize_width, check_size=args.check_size,
                     encoded=args.encoded, encode_type=args.encode_type,
                     seed=args.shuffle_seed)
    return 0


def _compute_image_mean_flags(p):
    p.add_argument("input_db", help="the Datum database to average")
    p.add_argument("output_file", nargs="?", default="",
                   help="the .binaryproto to write (optional: the per-channel means are "
                        "logged either way)")
    _backend_flag(p)


def cmd_compute_image_mean(args, log):
    from ..data.tools.image_mean import compute_image_mean
    compute_image_mean(args.input_db, args.output_file, args.backend)
    return 0


def _convert_cifar_flags(p):
    p.add_argument("input_folder", help="the extracted CIFAR-10 or CIFAR-100 archive "
                                        "(python or binary version)")
    p.add_argument("output_folder", help="where the train/test databases and "
                                         "mean.binaryproto go")
    p.add_argument("db_type", nargs="?", default="lmdb", choices=["lmdb", "leveldb"],
                   help="database backend (default lmdb)")
    flag(p, "label", default="fine", choices=["fine", "coarse"],
          help="CIFAR-100 only: the 100 fine classes (default) or the 20 coarse ones")


def cmd_convert_cifar(args, log):
    from ..data.tools.cifar import convert_cifar
    convert_cifar(args.input_folder, args.output_folder, args.db_type, args.label)
    return 0


def _convert_mnist_flags(p):
    p.add_argument("image_file", help="IDX image file (e.g. train-images-idx3-ubyte[.gz])")
    p.add_argument("label_file", help="IDX label file (e.g. train-labels-idx1-ubyte[.gz])")
    p.add_argument("db_name", help="the database to create (must not exist)")
    _backend_flag(p)


def cmd_convert_mnist(args, log):
    from ..data.tools.mnist import convert_mnist
    convert_mnist(args.image_file, args.label_file, args.db_name, args.backend)
    return 0


def _data_flags(p):
    p.add_argument("dataset", choices=["digits"], help="the embedded dataset to build")
    flag(p, "out", default="", help="output folder (default data/digits)")


def cmd_data(args, log):
    from ..data.datasets import digits
    digits.build_digits(args.out or digits.DEFAULT_DIR)
    return 0


COMMANDS = {
    "convert_imageset": Command(cmd_convert_imageset, "convert images named in a list file to "
                                "an LMDB/LevelDB of Datums", _convert_imageset_flags),
    "compute_image_mean": Command(cmd_compute_image_mean, "compute the mean image of a Datum "
                                  "database (.binaryproto)", _compute_image_mean_flags),
    "convert_cifar": Command(cmd_convert_cifar, "convert CIFAR-10/100 to train/test databases "
                             "and their mean", _convert_cifar_flags),
    "convert_mnist": Command(cmd_convert_mnist, "convert MNIST IDX image and label files to a "
                             "database", _convert_mnist_flags),
    "data": Command(cmd_data, "build an embedded dataset's databases (digits: 8x8 handwritten "
                    "digits)", _data_flags),
}
