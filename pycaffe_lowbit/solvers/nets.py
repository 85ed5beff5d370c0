"""The nets of a solver, as Caffe's Solver::InitTrainNet / InitTestNets.

* the train net comes from exactly one of ``net``, ``net_param``, ``train_net``,
  ``train_net_param``; its NetState is phase TRAIN merged with the net's own
  state and ``train_state``;
* test nets: ``test_net_param`` entries, then ``test_net`` files, then the
  generic ``net``/``net_param`` for the remaining ``test_iter`` entries; each
  phase TEST merged with ``test_state[i]``; they share the train net's weights;
* ``weights`` (comma-separated files) are copied into every net.
"""
import logging
import os

from ..formats import text, upgrade
from ..proto import caffe_pb2
from .errors import _check

log = logging.getLogger("pycaffe_lowbit")

_TRAIN_NET_FIELDS = ("net", "net_param", "train_net", "train_net_param")


def load_solver_param(param):
    """A SolverParameter (a copy, legacy fields upgraded) from a path or message."""
    if isinstance(param, caffe_pb2.SolverParameter):
        copy = caffe_pb2.SolverParameter()
        copy.CopyFrom(param)
        if upgrade.solver_needs_upgrade(copy):
            copy = upgrade.upgrade_solver(copy, "<SolverParameter>")
        return copy
    if isinstance(param, (str, os.PathLike)):
        return text.read_solver_param(os.fspath(param))
    raise TypeError("a solver needs a SolverParameter or a solver prototxt path, got %r"
                    % type(param).__name__)


class SolverNets:
    """Mixin of ``Solver``: building its train and test nets from ``self.param``."""

    def _load_weights(self, net):
        """Caffe's LoadNetWeights: every ``weights`` file (comma-separated
        entries too, blanks around names trimmed) copied into ``net`` by layer
        name, in order."""
        for weights in self.param.weights:
            for path in weights.split(","):
                log.info("Finetuning from %s", path.strip())
                net.copy_from(path.strip())

    def _net_class(self):
        from ..pycaffe.pycaffe import Net
        return Net

    def _build_net(self, net_param, phase, state):
        """A Net of ``net_param`` with Caffe's NetState merge: phase, then the
        net's own state, then the solver's train_state/test_state."""
        merged = caffe_pb2.NetState()
        merged.phase = phase
        merged.MergeFrom(net_param.state)
        if state is not None:
            merged.MergeFrom(state)
        param = caffe_pb2.NetParameter()
        param.CopyFrom(net_param)
        param.state.CopyFrom(merged)
        return self._net_class()(param, merged.phase, level=merged.level,
                                 stages=list(merged.stage))

    @staticmethod
    def _read_net(path):
        return text.read_net_param(path)

    def _init_train_net(self):
        p = self.param
        given = [f for f in _TRAIN_NET_FIELDS
                 if (p.HasField(f) if f.endswith("_param") else bool(getattr(p, f)))]
        _check(given, "SolverParameter must specify a train net using one of these "
                      "fields: " + ", ".join(_TRAIN_NET_FIELDS))
        _check(len(given) == 1, "SolverParameter must not contain more than one of these "
                                "fields specifying a train_net: " + ", ".join(_TRAIN_NET_FIELDS))
        field = given[0]
        if field == "train_net_param":
            log.info("Creating training net specified in train_net_param.")
            net_param = p.train_net_param
        elif field == "train_net":
            log.info("Creating training net from train_net file: %s", p.train_net)
            net_param = self._read_net(p.train_net)
        elif field == "net_param":
            log.info("Creating training net specified in net_param.")
            net_param = p.net_param
        else:
            log.info("Creating training net from net file: %s", p.net)
            net_param = self._read_net(p.net)
        return self._build_net(net_param, caffe_pb2.TRAIN,
                               p.train_state if p.HasField("train_state") else None)

    def _init_test_nets(self):
        p = self.param
        has_net_param = p.HasField("net_param")
        has_net_file = bool(p.net)
        num_generic = int(has_net_param) + int(has_net_file)
        _check(num_generic <= 1, "Both net_param and net_file may not be specified.")
        num_test_nets = len(p.test_net_param) + len(p.test_net)
        if num_generic:
            _check(len(p.test_iter) >= num_test_nets,
                   "test_iter must be specified for each test network.")
        else:
            _check(len(p.test_iter) == num_test_nets,
                   "test_iter must be specified for each test network.")
        num_generic_instances = len(p.test_iter) - num_test_nets
        num_instances = num_test_nets + num_generic_instances
        if len(p.test_state):
            _check(len(p.test_state) == num_instances,
                   "test_state must be unspecified or specified once per test net.")
        if num_instances:
            _check(p.test_interval > 0, "test_interval must be > 0 when there are test nets, "
                                        "got %d" % p.test_interval)
        sources = []
        for i, net_param in enumerate(p.test_net_param):
            sources.append(("test_net_param", net_param))
        for path in p.test_net:
            sources.append(("test_net file: " + path, self._read_net(path)))
        if num_generic_instances:
            generic = p.net_param if has_net_param else self._read_net(p.net)
            what = "net_param" if has_net_param else "net file: " + p.net
            sources.extend([(what, generic)] * num_generic_instances)
        nets = []
        for i, (what, net_param) in enumerate(sources):
            log.info("Creating test net (#%d) specified by %s", i, what)
            net = self._build_net(net_param, caffe_pb2.TEST,
                                  p.test_state[i] if len(p.test_state) else None)
            self._load_weights(net)
            net.share_with(self.net)
            nets.append(net)
        return nets
