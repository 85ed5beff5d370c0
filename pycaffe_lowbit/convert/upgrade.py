"""Caffe's tools/upgrade_net_proto_text and upgrade_net_proto_binary.

Each reads a net (text or binary), applies every legacy upgrade Caffe applies
(``io.upgrade``: V0 -> V1 -> current layers, transform_param, input fields,
BatchNorm params) and writes it back in the same encoding, logging as Caffe
does ("Wrote upgraded NetParameter text proto to ...").
"""
import logging

from ..formats import caffemodel, text, upgrade

log = logging.getLogger("pycaffe_lowbit")


def _upgraded(net, source):
    if not upgrade.upgrade_net_in_place(net, source):
        log.error("Encountered error(s) while upgrading prototxt; see errors above.")
        return False
    return True


def upgrade_net_proto_text(src, dst):
    """Returns True when the upgrade succeeded (Caffe exits 1 otherwise, after
    writing the output anyway)."""
    net = text.read_net_param(src, upgrade_net=False)
    ok = _upgraded(net, src)
    text.write_text(net, dst)
    log.info("Wrote upgraded NetParameter text proto to %s", dst)
    return ok


def upgrade_net_proto_binary(src, dst):
    net = caffemodel.read_net_binary(src, upgrade_net=False)
    ok = _upgraded(net, src)
    caffemodel.write_net_binary(net, dst)
    log.info("Wrote upgraded NetParameter binary proto to %s", dst)
    return ok
