"""``lowbit-caffe device_query --gpu ID``: Caffe's report on a GPU (caffe.cpp's
device_query, Caffe::DeviceQuery), from CuPy's cudaGetDeviceProperties."""
from ..core import backend
from .common import Command, add_caffe_flags, gpu_ids

# (label, property, how to show it), in Caffe's order
_ROWS = (
    ("Major revision number", "major", str),
    ("Minor revision number", "minor", str),
    ("Name", "name", lambda v: v.decode() if isinstance(v, bytes) else str(v)),
    ("Total global memory", "totalGlobalMem", str),
    ("Total shared memory per block", "sharedMemPerBlock", str),
    ("Total registers per block", "regsPerBlock", str),
    ("Warp size", "warpSize", str),
    ("Maximum memory pitch", "memPitch", str),
    ("Maximum threads per block", "maxThreadsPerBlock", str),
    ("Maximum dimension of block", "maxThreadsDim", lambda v: ", ".join(str(x) for x in v)),
    ("Maximum dimension of grid", "maxGridSize", lambda v: ", ".join(str(x) for x in v)),
    ("Clock rate", "clockRate", str),
    ("Total constant memory", "totalConstMem", str),
    ("Texture alignment", "textureAlignment", str),
    ("Concurrent copy and execution", "deviceOverlap", lambda v: "Yes" if v else "No"),
    ("Number of multiprocessors", "multiProcessorCount", str),
    ("Kernel execution timeout", "kernelExecTimeoutEnabled", lambda v: "Yes" if v else "No"),
)


def report(device_id, properties):
    """Caffe's lines for one device."""
    lines = ["Device id:                     %d" % device_id]
    for label, key, show in _ROWS:
        value = properties.get(key)
        lines.append("%-31s%s" % (label + ":", "(unknown)" if value is None else show(value)))
    return lines


def cmd_device_query(args, log):
    if not args.gpu:
        log.error("Need a device ID to query.")
        return 1
    reason = backend.gpu_unavailable_reason()
    if reason:
        log.error("device_query: %s", reason)
        return 1
    for device_id in gpu_ids(args.gpu):
        log.info("Querying GPUs %s", args.gpu)
        for line in report(device_id, backend.device_properties(device_id)):
            log.info("%s", line)
    return 0


COMMANDS = {"device_query": Command(cmd_device_query, "show GPU diagnostic information",
                                    add_caffe_flags)}
