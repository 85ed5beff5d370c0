"""The solver's output lines and its test pass (Caffe's Solver::Test).

``run_test(solver, i)`` runs test net i for ``test_iter[i]`` batches on the
train net's current weights, honouring SIGINT/SIGHUP requests between batches,
and logs the float32 mean of every output element in Caffe's format;
``log_net_outputs`` writes the "Train/Test net output #k" lines. A solver
callback with an ``on_test(test_net_id, scores)`` method (ours, not pycaffe's)
gets each pass's {output: mean}.
"""
import logging

import numpy as np

from ..core import backend

log = logging.getLogger("pycaffe_lowbit")


def _g(value):
    """A number as Caffe's iostream prints it (6 significant digits)."""
    return "%g" % value


def log_net_outputs(net, what, scores):
    """Caffe's "    Train net output #k: name = v (* w = w*v loss)" lines;
    ``scores`` (name, value) pairs replace the blobs' values for tests."""
    if scores is None:
        scores = []
        for blob_id in net._outputs:
            values = backend.to_numpy(net._blobs[blob_id].data).ravel()
            scores.extend((blob_id, float(v)) for v in values)
    for k, (blob_id, value) in enumerate(scores):
        weight = net._blob_loss_weight[blob_id]
        extra = ""
        if weight:
            extra = " (* %s = %s loss)" % (_g(weight), _g(np.float32(weight * value)))
        log.info("    %s net output #%d: %s = %s%s", what, k, net._blob_names[blob_id],
                 _g(value), extra)


def run_test(solver, test_net_id=0):
    """Run test net ``test_net_id`` for its ``test_iter`` batches and log the
    mean of each output (Caffe's Solver::Test); returns {name: mean}
    (one value per output element; a blob of n elements gives a list)."""
    p = solver.param
    log.info("Iteration %d, Testing net (#%d)", solver.iter, test_net_id)
    net = solver.test_nets[test_net_id]
    net.share_with(solver.net)
    n_iter = p.test_iter[test_net_id]
    scores, ids = None, []
    loss = np.float32(0)
    for i in range(n_iter):
        request = solver.requested_action()
        while request != "none":
            if request == "snapshot":
                solver.snapshot()
            elif request == "stop":
                solver.requested_early_exit = True
            request = solver.requested_action()
        if solver.requested_early_exit:
            break
        iter_loss = np.float32(net.forward_prefilled())
        if p.test_compute_loss:
            loss = np.float32(loss + iter_loss)
        values = []
        for blob_id in net._outputs:
            flat = backend.to_numpy(net._blobs[blob_id].data).astype(np.float32).ravel()
            values.append(flat)
            if i == 0:
                ids.extend([blob_id] * flat.size)
        values = np.concatenate(values) if values else np.zeros(0, np.float32)
        scores = values.copy() if scores is None else (scores + values).astype(np.float32)
    if solver.requested_early_exit:
        log.info("Test interrupted.")
        return {}
    if p.test_compute_loss:
        loss = np.float32(loss / np.float32(n_iter))
        log.info("Test loss: %s", _g(loss))
    if scores is None:
        return {}
    means = (scores / np.float32(n_iter)).astype(np.float32)
    log_net_outputs(net, "Test", list(zip(ids, means.tolist())))
    out = {}
    for blob_id, value in zip(ids, means.tolist()):
        out.setdefault(net._blob_names[blob_id], []).append(value)
    out = {k: v[0] if len(v) == 1 else v for k, v in out.items()}
    for callback in solver.callbacks:       # ours: e.g. logs.tensorboard listens
        if hasattr(callback, "on_test"):
            callback.on_test(test_net_id, out)
    return out
