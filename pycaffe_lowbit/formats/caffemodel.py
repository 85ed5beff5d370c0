"""Binary protos: .caffemodel (NetParameter), .binaryproto (BlobProto), .solverstate.

Reading a .caffemodel applies Caffe's upgrades (``io.upgrade``) and one repair
of our own, the 147/148 clash (see proto/caffe.proto): upstream Caffe stores a
Swish layer's ``swish_param`` at field 147 and a Clip layer's ``clip_param`` at
148, where this schema (like the HWGQ fork) has ``binary_convolution_param``
and ``binary_inner_product_param``. For layers of type "Swish"/"Clip" those
bytes are re-read as SwishParameter/ClipParameter and the wrong field cleared.

Every write is atomic: the bytes go to a temporary file in the target's
folder, are fsync'ed, and replace the target with ``os.replace``, so a crash
leaves either the old file or the new one, never half of one.

Large blobs stay out of Python lists: see ``blobproto`` for the packed-bytes
fast paths.
"""
import contextlib
import logging
import os
import tempfile

import numpy as np
from google.protobuf import message as pb_message

try:  # protobuf >= 4.23
    from google.protobuf.unknown_fields import UnknownFieldSet as _unknown_fields
except ImportError:  # older runtimes: the message method
    def _unknown_fields(msg):
        return msg.UnknownFields()

from ..core import backend
from ..proto import caffe_pb2
from . import upgrade
from .blobproto import array_from_proto, array_to_proto, blob_array  # noqa: F401

log = logging.getLogger("pycaffe_lowbit")

_UMASK = os.umask(0)
os.umask(_UMASK)


# -- atomic writes -------------------------------------------------------------

def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path beside ``path``; when the block ends without an
    exception the file written there is fsync'ed and moved onto ``path``.
    On an exception the temporary file is removed and ``path`` is untouched."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes-like, or a list of bytes-like pieces) to ``path``
    atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            if isinstance(data, (list, tuple)):
                f.writelines(data)
            else:
                f.write(data)


# -- generic binary protos -------------------------------------------------------

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _read_bytes(path, what):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(2, "%s file not found" % what, path) from None


def _not_a(path, cls, data, detail):
    hint = ""
    if data.startswith(_HDF5_MAGIC):
        hint = " (it is an HDF5 file)"
    elif data[:256].lstrip()[:1].isalpha() or data[:1] == b"#":
        hint = " (it looks like text; a prototxt is read with io.text)"
    elif isinstance(detail, pb_message.DecodeError):
        hint = " (truncated or corrupt: %d bytes)" % len(data)
    return ValueError("%s: not a binary %s%s: %s" % (path, cls.DESCRIPTOR.name, hint, detail))


def read_binary_proto(path, cls):
    """A ``cls`` message parsed from binary file ``path`` (no upgrade).
    Bytes that do not decode, or that decode to nothing but fields ``cls``
    does not know, raise ValueError naming the file."""
    path = os.fspath(path)
    data = _read_bytes(path, "binary %s" % cls.DESCRIPTOR.name)
    msg = cls()
    try:
        msg.ParseFromString(data)
    except pb_message.DecodeError as e:
        raise _not_a(path, cls, data, e) from None
    known = msg.ListFields()
    if data and not known:
        raise _not_a(path, cls, data, "no field of %s found in %d bytes"
                     % (cls.DESCRIPTOR.full_name, len(data)))
    if (cls is caffe_pb2.NetParameter and not (len(msg.layer) or len(msg.layers))
            and len(_unknown_fields(msg))):
        raise _not_a(path, cls, data, "no layers, and fields %s does not know"
                     % cls.DESCRIPTOR.full_name)
    return msg


def write_binary_proto(msg, path):
    """Serialize any message to ``path`` atomically (e.g. a SolverState)."""
    atomic_write_bytes(path, msg.SerializeToString())


# -- .caffemodel -----------------------------------------------------------------

_CLASH = {
    # layer type: (field the bytes landed in, field they belong to, its message)
    "Swish": ("binary_convolution_param", "swish_param", caffe_pb2.SwishParameter),
    "Clip": ("binary_inner_product_param", "clip_param", caffe_pb2.ClipParameter),
}


def repair_clip_swish(net_param, source="<NetParameter>"):
    """Move upstream Swish/Clip parameters that a binary parse put in fields
    147/148 to swish_param/clip_param, in place. Returns how many were moved."""
    moved = 0
    for layer in net_param.layer:
        clash = _CLASH.get(layer.type)
        if clash is None or not layer.HasField(clash[0]):
            continue
        wrong, right, cls = clash
        fixed = cls()
        fixed.MergeFromString(getattr(layer, wrong).SerializeToString())
        if not fixed.IsInitialized():
            raise ValueError("%s: layer '%s' (%s): its %s (field %d) lacks %s"
                             % (source, layer.name, layer.type, right,
                                layer.DESCRIPTOR.fields_by_name[wrong].number,
                                ", ".join(fixed.FindInitializationErrors())))
        getattr(layer, right).MergeFrom(fixed)
        layer.ClearField(wrong)
        moved += 1
    if moved:
        log.info("%s: read %d Swish/Clip parameter(s) stored at upstream field "
                 "numbers 147/148", source, moved)
    return moved


def read_net_binary(path, upgrade_net=True):
    """Caffe's ReadNetParamsFromBinaryFileOrDie: a binary NetParameter
    (.caffemodel), Swish/Clip-repaired and upgraded."""
    path = os.fspath(path)
    net = read_binary_proto(path, caffe_pb2.NetParameter)
    repair_clip_swish(net, path)
    if upgrade_net:
        upgrade.upgrade_net_in_place(net, path)
    return net


def write_net_binary(net_param, path):
    """Write a NetParameter as a .caffemodel, atomically."""
    atomic_write_bytes(path, net_param.SerializeToString())


# -- .binaryproto ----------------------------------------------------------------

def read_blobproto(path):
    """The array of a .binaryproto BlobProto (e.g. a mean file), in its
    declared shape (legacy 4-D protos give 4 axes)."""
    path = os.fspath(path)
    proto = read_binary_proto(path, caffe_pb2.BlobProto)
    try:
        return array_from_proto(proto)
    except ValueError as e:
        raise ValueError("%s: %s" % (path, e)) from None


def write_blobproto(array, path, legacy=True):
    """Write ``array`` as a BlobProto. With ``legacy`` (the default, as Caffe's
    compute_image_mean and pycaffe's array_to_blobproto) the shape goes in
    num/channels/height/width, padded with leading 1s to 4 axes; otherwise in
    the N-D ``shape``. float64 arrays are stored as double_data. A device array
    is copied to the host first."""
    array = np.asarray(backend.to_numpy(array))
    if legacy:
        if array.ndim > 4:
            raise ValueError("a legacy BlobProto holds at most 4 axes; %s has %d "
                             "(pass legacy=False)" % (array.shape, array.ndim))
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        proto = caffe_pb2.BlobProto(num=dims[0], channels=dims[1], height=dims[2],
                                    width=dims[3])
        array_to_proto(array, proto=proto, with_shape=False)
    else:
        proto = array_to_proto(array)
    write_binary_proto(proto, path)
