"""Solver snapshots and restore, in Caffe's formats (Solver::Snapshot,
SGDSolver::SnapshotSolverState*, SGDSolver::RestoreSolverState*).

``snapshot(solver)`` writes two files named after ``snapshot_prefix`` and the
iteration (``<prefix>_iter_<iter>``):

* BINARYPROTO (the default): ``.caffemodel`` — the train net as a binary
  NetParameter (``Net::ToProto``, diffs too with ``snapshot_diff``) — and
  ``.solverstate``, a binary ``SolverState``::

      iter          the iteration
      learned_net   the model file name exactly as written (prefix included,
                    so relative when the prefix is)
      history       one BlobProto (N-D shape, float data) per history blob,
                    in the solver's ``history`` order
      current_step  the multistep position

* HDF5: ``.caffemodel.h5`` (``Net::ToHDF5``: ``/data/<layer>/<i>``, plus
  ``/diff/<layer>/<i>`` for every param with ``snapshot_diff``) and
  ``.solverstate.h5``::

      /iter          scalar int32 dataset
      /learned_net   scalar fixed-length string dataset (NUL-terminated)
      /current_step  scalar int32 dataset
      /history/0, /history/1, ...   one N-D float dataset per history blob

Each file is written atomically (a temporary file beside it, fsync'ed, then
renamed), so a crash leaves the previous snapshot intact and never a partial
file under a final name. A write that fails (a full disk, an I/O error)
raises ``SnapshotWriteError`` naming the file and the OS's reason; the model
file of that snapshot is removed when its state could not be written, so
every model/state pair on disk is complete, and ``last_good`` names the
state of the last snapshot written whole (``solver.last_snapshot``; the
state restored from counts).

``restore(solver, path)`` reads either format (a name ending in ``.h5`` is
HDF5, as Caffe's Solver::Restore decides), sets ``iter`` and
``current_step``, loads ``learned_net`` into the train net (when the state
names one) and copies the history blobs. Caffe opens ``learned_net`` as
stored, i.e. relative to the working directory; we do the same first and, when
no such file exists, also look beside the state file (the stored path joined
to the state's folder, then its base name there), so that a snapshot folder
can be moved or resumed from elsewhere.

Differences from Caffe: a history blob whose stored shape differs from the
solver's raises (Caffe's Blob::FromProto would silently reshape the history,
and its HDF5 reader aborts); an empty or unreadable state file raises a
ValueError naming the file instead of aborting.
"""
import logging
import os

import numpy as np

from ..core import backend
from ..formats import caffemodel, hdf5
from ..formats.blobproto import array_from_proto, array_to_proto, proto_shape, shape_matches
from ..proto import caffe_pb2
from ..core.lazy import lazy_module

h5py = lazy_module("h5py")  # imported on first use (core/lazy.py)

log = logging.getLogger("pycaffe_lowbit")

_HDF5 = caffe_pb2.SolverParameter.HDF5
_BINARYPROTO = caffe_pb2.SolverParameter.BINARYPROTO


class SolverStateError(ValueError):
    """A solver state that cannot be restored into this solver."""


class SnapshotWriteError(OSError):
    """A snapshot file could not be written: ``filename`` (the final name,
    which holds nothing new), the OS's ``errno``/``strerror``, and
    ``last_good``: the solver state of the last complete snapshot, or None."""

    def __init__(self, path, exc, last_good):
        reason = exc.strerror or str(exc)
        super().__init__(exc.errno, reason, path)
        self.last_good = last_good

    def __str__(self):
        return ("cannot write snapshot file %s: %s%s; nothing was left under that name"
                % (self.filename, self.strerror,
                   " (errno %d)" % self.errno if self.errno else ""))


# -- file names ----------------------------------------------------------------

def snapshot_filename(param, iteration, extension):
    """Solver::SnapshotFilename: ``<snapshot_prefix>_iter_<iter><extension>``."""
    return "%s_iter_%d%s" % (param.snapshot_prefix, int(iteration), extension)


def _is_hdf5(path):
    return os.fspath(path).endswith(".h5")


def _check_folder(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "folder %s does not exist (check snapshot_prefix)"
                                % folder, folder)


# -- snapshot ----------------------------------------------------------------

def snapshot(solver):
    """Write the model and the solver state of ``solver`` (Solver::Snapshot);
    returns the model's path (the ``learned_net`` stored in the state)."""
    param = solver.param
    fmt = param.snapshot_format
    if fmt == _BINARYPROTO:
        write_model, write_state = _snapshot_binary, _state_binary
    elif fmt == _HDF5:
        write_model, write_state = _snapshot_hdf5, _state_hdf5
    else:
        raise ValueError("Unsupported snapshot format %r" % fmt)
    last_good = getattr(solver, "last_snapshot", None)
    ext = ".caffemodel" if fmt == _BINARYPROTO else ".caffemodel.h5"
    model = snapshot_filename(param, solver.iter, ext)
    _check_folder(model)
    try:
        write_model(solver)
    except OSError as exc:
        raise SnapshotWriteError(model, exc, last_good) from exc
    state = snapshot_filename(param, solver.iter, ext.replace("caffemodel", "solverstate"))
    try:
        write_state(solver, model)
    except OSError as exc:
        try:      # a model without its state is half a snapshot
            os.remove(model)
        except OSError:
            pass
        raise SnapshotWriteError(state, exc, last_good) from exc
    solver.last_snapshot = state
    return model


def _snapshot_binary(solver):
    model = snapshot_filename(solver.param, solver.iter, ".caffemodel")
    log.info("Snapshotting to binary proto file %s", model)
    net_param = solver.net.to_proto(write_diff=solver.param.snapshot_diff)
    caffemodel.write_net_binary(net_param, model)
    return model


def _snapshot_hdf5(solver):
    model = snapshot_filename(solver.param, solver.iter, ".caffemodel.h5")
    log.info("Snapshotting to HDF5 file %s", model)
    if solver.param.snapshot_diff:
        write_net_hdf5(solver.net, model, write_diff=True)
    else:
        solver.net.save_hdf5(model)
    return model


def write_net_hdf5(net, path, write_diff=False):
    """Net::ToHDF5(path, write_diff): /data holds the params each layer owns;
    with ``write_diff`` /diff holds every param's diff, shared ones included."""
    owner = {pos: net._param_owner[i] for i, pos in enumerate(net._param_layer)}
    data, diffs = [], []
    for layer_id, (name, layer) in enumerate(zip(net._layer_names, net.layers)):
        data.append((name, [None if owner[(layer_id, k)] >= 0 else blob.data
                            for k, blob in enumerate(layer.blobs)]))
        diffs.append((name, [blob.diff for blob in layer.blobs]))
    hdf5.write_weights_hdf5(data, path, diffs if write_diff else None)


def solver_state(solver, model_filename):
    """The SolverState message SGDSolver::SnapshotSolverStateToBinaryProto writes."""
    state = caffe_pb2.SolverState()
    state.iter = int(solver.iter)
    state.learned_net = model_filename
    state.current_step = int(solver.current_step)
    for blob in solver.history:
        array_to_proto(blob.data, proto=state.history.add())
    return state


def _state_binary(solver, model):
    path = snapshot_filename(solver.param, solver.iter, ".solverstate")
    log.info("Snapshotting solver state to binary proto file %s", path)
    caffemodel.write_binary_proto(solver_state(solver, model), path)
    return path


def _save_string(group, name, text):
    """H5LTmake_dataset_string: a scalar, fixed-length, NUL-terminated string."""
    raw = text.encode("utf-8") + b"\0"
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(len(raw))
    tid.set_strpad(h5py.h5t.STR_NULLTERM)
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    dset = h5py.h5d.create(group.id, name.encode(), tid, space)
    dset.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array(raw, dtype="S%d" % len(raw)))


def _state_hdf5(solver, model):
    path = snapshot_filename(solver.param, solver.iter, ".solverstate.h5")
    log.info("Snapshotting solver state to HDF5 file %s", path)
    with caffemodel.atomic_output(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            f.create_dataset("iter", data=np.int32(solver.iter))
            _save_string(f, "learned_net", model)
            f.create_dataset("current_step", data=np.int32(solver.current_step))
            history = f.create_group("history", track_order=True)
            for i, blob in enumerate(solver.history):
                history.create_dataset(str(i), data=backend.to_numpy(blob.data))
    return path


# -- restore -----------------------------------------------------------------

def restore(solver, path):
    """Solver::Restore: read the state at ``path`` (HDF5 when the name ends in
    ``.h5``) into ``solver``: iter, current_step, the learned net's weights
    and the history."""
    path = os.fspath(path)
    if _is_hdf5(path):
        iteration, current_step, learned_net, history = _read_state_hdf5(path)
    else:
        iteration, current_step, learned_net, history = _read_state_binary(path)
    if len(history) != len(solver.history):
        raise SolverStateError(
            "%s: Incorrect length of history blobs: the state has %d, the solver "
            "has %d (a state of another solver type or net?)"
            % (path, len(history), len(solver.history)))
    arrays = [_history_array(path, i, blob, stored)
              for i, (blob, stored) in enumerate(zip(solver.history, history))]
    if learned_net is not None:
        solver.net.copy_from(resolve_learned_net(learned_net, path))
    solver.iter = iteration
    solver.current_step = current_step
    if not _is_hdf5(path):
        log.info("SGDSolver: restoring history")
    for blob, values in zip(solver.history, arrays):
        blob.set_values(values)
    solver.last_snapshot = path


def resolve_learned_net(learned_net, state_path):
    """The model file a state names: as stored (Caffe: relative to the working
    directory), else relative to the state file's folder, else its base name
    there."""
    if os.path.exists(learned_net):
        return learned_net
    tried = [learned_net]
    if not os.path.isabs(learned_net):
        folder = os.path.dirname(os.path.abspath(state_path))
        for candidate in (os.path.join(folder, learned_net),
                          os.path.join(folder, os.path.basename(learned_net))):
            if candidate in tried:
                continue
            if os.path.exists(candidate):
                log.info("learned_net %s not found in the working directory; "
                         "using %s", learned_net, candidate)
                return candidate
            tried.append(candidate)
    raise FileNotFoundError(2, "%s: the learned net it names (learned_net: %s) was "
                               "not found; tried %s"
                            % (state_path, learned_net, ", ".join(tried)), learned_net)


def _read_state_binary(path):
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise FileNotFoundError(2, "solver state file not found", path) from None
    if size == 0:
        raise SolverStateError("%s: empty solver state file" % path)
    state = caffemodel.read_binary_proto(path, caffe_pb2.SolverState)
    learned_net = state.learned_net if state.HasField("learned_net") else None
    return state.iter, state.current_step, learned_net, list(state.history)


def _read_state_hdf5(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "solver state file not found", path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise SolverStateError("%s: not an HDF5 solver state: %s"
                               % (path, hdf5.open_failure(path, e))) from None
    with f:
        for key in ("iter", "current_step", "history"):
            if key not in f:
                raise SolverStateError("%s: not a Caffe HDF5 solver state: no '%s' "
                                       "(found: %s)" % (path, key, ", ".join(f.keys())))
        learned_net = None
        if "learned_net" in f:
            raw = f["learned_net"][()]
            if isinstance(raw, np.ndarray):
                raw = raw.item()
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8")
            learned_net = raw.rstrip("\0")
        group = f["history"]
        if not isinstance(group, h5py.Group):
            raise SolverStateError("%s: 'history' is not a group" % path)
        history = []
        for i in range(len(group)):
            if str(i) not in group:
                raise SolverStateError("%s: history has %d entries but no dataset '%d' "
                                       "(found: %s)" % (path, len(group), i,
                                                        ", ".join(group.keys())))
            history.append(np.asarray(group[str(i)][()]))
        return int(f["iter"][()]), int(f["current_step"][()]), learned_net, history


def _history_array(path, index, blob, stored):
    """The values of history entry ``index`` in ``blob``'s shape, or a clear error."""
    if isinstance(stored, np.ndarray):
        shape = tuple(stored.shape)
        ok = shape == blob.shape
        values = stored
    else:
        shape = proto_shape(stored)
        ok = shape_matches(blob.shape, stored)
        values = None
        if ok:
            try:
                values = array_from_proto(stored, shape=blob.shape)
            except ValueError as e:
                raise SolverStateError("%s: history blob %d: %s" % (path, index, e)) from None
    if not ok:
        raise SolverStateError(
            "%s: history blob %d has shape %s but the solver's is %s (a state of "
            "another net?)" % (path, index, shape, blob.shape))
    return values
