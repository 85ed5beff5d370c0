"""``lowbit-caffe`` data commands: Caffe's tools with their flags and arguments.

    lowbit-caffe convert_imageset [FLAGS] ROOTFOLDER/ LISTFILE DB_NAME
    lowbit-caffe compute_image_mean [--backend=lmdb] INPUT_DB [OUTPUT_FILE]
    lowbit-caffe convert_cifar [--label=fine|coarse] INPUT_FOLDER OUTPUT_FOLDER [lmdb|leveldb]
    lowbit-caffe convert_mnist [--backend=lmdb] IMAGE_FILE LABEL_FILE DB_NAME
    lowbit-caffe data digits [--out DIR]

Flags take gflags' spellings: ``-backend leveldb``, ``--backend=leveldb``; a
boolean flag is on with ``--gray``, ``--gray=true`` or ``-gray``, and off with
``--nogray`` or ``--gray=false``. The logic lives in ``pycaffe_lowbit/tools``
and ``pycaffe_lowbit/datasets``; bad input ends with one error line and exit 1.
"""
import argparse

_TRUE = ("true", "1", "yes", "t", "y")
_FALSE = ("false", "0", "no", "f", "n")


def _flag(parser, name, **kwargs):
    from .cli import flag
    flag(parser, name, **kwargs)


def bool_flag(parser, name, help_text):
    """A gflags boolean: -name, --name, --name=true|false, --noname.

    argparse looks an argument up whole before splitting at '=', so each
    ``--name=value`` spelling is an option string of its own (hidden in help)."""
    with_value = [p + name + "=" + v for p in ("-", "--") for v in _TRUE]
    off = [p + n for p in ("-", "--") for n in ["no" + name] + [name + "=" + v for v in _FALSE]]
    parser.add_argument("-" + name, "--" + name, dest=name, action="store_const", const=True,
                        default=False,
                        help=help_text + " (--%s=false or --no%s: off)" % (name, name))
    parser.add_argument(*with_value, dest=name, action="store_const", const=True,
                        help=argparse.SUPPRESS)
    parser.add_argument(*off, dest=name, action="store_const", const=False,
                        help=argparse.SUPPRESS)


def _backend_flag(parser):
    _flag(parser, "backend", default="lmdb", choices=["lmdb", "leveldb"],
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
    _flag(p, "shuffle_seed", type=int, default=0, help="seed of --shuffle (default 0)")
    _backend_flag(p)
    _flag(p, "resize_width", type=int, default=0, help="width images are resized to")
    _flag(p, "resize_height", type=int, default=0, help="height images are resized to")
    bool_flag(p, "check_size", "check that all the images have the same size")
    bool_flag(p, "encoded", "store the encoded image (the file's bytes) in the Datum")
    _flag(p, "encode_type", default="",
          help="what type to encode the image as ('png', 'jpg', ...); implies --encoded")


def cmd_convert_imageset(args, log):
    from .tools.imageset import convert_imageset
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
    from .tools.image_mean import compute_image_mean
    compute_image_mean(args.input_db, args.output_file, args.backend)
    return 0


def _convert_cifar_flags(p):
    p.add_argument("input_folder", help="the extracted CIFAR-10 or CIFAR-100 archive "
                                        "(python or binary version)")
    p.add_argument("output_folder", help="where the train/test databases and "
                                         "mean.binaryproto go")
    p.add_argument("db_type", nargs="?", default="lmdb", choices=["lmdb", "leveldb"],
                   help="database backend (default lmdb)")
    _flag(p, "label", default="fine", choices=["fine", "coarse"],
          help="CIFAR-100 only: the 100 fine classes (default) or the 20 coarse ones")


def cmd_convert_cifar(args, log):
    from .tools.cifar import convert_cifar
    convert_cifar(args.input_folder, args.output_folder, args.db_type, args.label)
    return 0


def _convert_mnist_flags(p):
    p.add_argument("image_file", help="IDX image file (e.g. train-images-idx3-ubyte[.gz])")
    p.add_argument("label_file", help="IDX label file (e.g. train-labels-idx1-ubyte[.gz])")
    p.add_argument("db_name", help="the database to create (must not exist)")
    _backend_flag(p)


def cmd_convert_mnist(args, log):
    from .tools.mnist import convert_mnist
    convert_mnist(args.image_file, args.label_file, args.db_name, args.backend)
    return 0


def _data_flags(p):
    p.add_argument("dataset", choices=["digits"], help="the embedded dataset to build")
    _flag(p, "out", default="", help="output folder (default data/digits)")


def cmd_data(args, log):
    from .datasets import digits
    digits.build_digits(args.out or digits.DEFAULT_DIR)
    return 0


TOOLS = {
    "convert_imageset": (cmd_convert_imageset, _convert_imageset_flags,
                         "convert images named in a list file to an LMDB/LevelDB of Datums"),
    "compute_image_mean": (cmd_compute_image_mean, _compute_image_mean_flags,
                           "compute the mean image of a Datum database (.binaryproto)"),
    "convert_cifar": (cmd_convert_cifar, _convert_cifar_flags,
                      "convert CIFAR-10/100 to train/test databases and their mean"),
    "convert_mnist": (cmd_convert_mnist, _convert_mnist_flags,
                      "convert MNIST IDX image and label files to a database"),
    "data": (cmd_data, _data_flags,
             "build an embedded dataset's databases (digits: 8x8 handwritten digits)"),
}


def register(commands, own_flags):
    """Add the data commands to cli.py's tables."""
    for name, (fn, flags, help_text) in TOOLS.items():
        commands[name] = (fn, help_text)
        own_flags[name] = flags
