"""``lowbit-caffe``: Caffe's command line (``caffe <command> -flag value``).

One module per command family, each with a ``COMMANDS`` table:

    train.py       train             (caffe train)
    score.py       test              (caffe test)
    benchmark.py   time              (caffe time)
    device.py      device_query
    draw.py        draw              (python/draw_net.py)
    logs.py        parse_log, plot   (tools/extra/parse_log.py, a plot of ours)
    data.py        convert_imageset, compute_image_mean, convert_cifar,
                   convert_mnist, data
    deploy.py      deploy, convert, upgrade_net_proto_text/binary
    summary.py     summary           (bits, parameters, MACs, memory per layer)

``common.py`` holds what they share (flags, loading a model, the device),
``overrides.py`` the ``--set FIELD=VALUE`` flag, ``main.py`` the parser.
The commands are a thin face over the pycaffe API: the work is done in the
package's other folders.
"""
from .main import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]
