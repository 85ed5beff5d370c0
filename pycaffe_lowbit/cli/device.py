"""``lowbit-caffe device_query``: Caffe's GPU report (not yet available)."""
from ..version import __version__
from .common import Command, add_caffe_flags


def cmd_device_query(args, log):
    log.error("this command is not available yet in pycaffe_lowbit %s (GPU queries: tracked "
              "in the GPU issue)", __version__)
    return 1


COMMANDS = {"device_query": Command(cmd_device_query,
                                    "show GPU diagnostic information (not yet available)",
                                    add_caffe_flags)}
