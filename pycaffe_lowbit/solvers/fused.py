"""The fused update: ApplyUpdate's passes over every learnable param as one
kernel per rule (``kernels/solver.cu``), on the GPU and under
``kernels.emulate()``.

``ParamUpdate.apply_update`` takes this path when ``usable(solver)``: the
rule is a built-in one (its class sets ``fused_rule`` beside its own
``compute_update_value``), no step of the update is overridden, and the params,
their diffs and the histories are float arrays of one dtype that the kernels
take. Then, per iteration:

1. with ``clip_gradients`` >= 0, the sum of squares of all diffs (one kernel,
   partial sums in double, added on the host) gives the L2 norm and the scale,
   logged as on the other path;
2. one launch of the rule's kernel: per element the clip scale, 1 / iter_size,
   L2 / L1 regularization with weight_decay * decay_mult, the rule with
   rate * lr_mult, diff = the step, data -= the step, clip_data.

The result is the NumPy path's, bit for bit (the same operations in the same
order in the params' dtype), except the clipping norm, whose sum runs in
another order (float64, so the scale rarely moves by an ulp).

The param table (offsets and addresses) and the per-param decays, clips and
regularization kinds are built once and reused while the arrays and the
multipliers stay the same; the rates, decays and clips go to the device as one
(3 P,) array every iteration (the rate moves): P values, a small copy.
"""
from .. import kernels
from ..kernels import solver as ksolver
from .errors import SolverError

_REGULARIZATION = {"L2": 1, "L1": 2}


def _arrays(solver):
    """{kind: [arrays]} of the learnable params and the rule's histories."""
    params = solver.net.learnable_params
    arrays = {"data": [b.data for b in params], "diff": [b.diff for b in params]}
    for kind, history in zip(("hist", "hist2"), solver.fused_histories()):
        arrays[kind] = [b.data for b in history]
    return arrays


def usable(solver):
    """True when ``solver``'s update can run fused (see the module docstring)."""
    params = solver.net.learnable_params
    if not params or not kernels.active(*[b.data for b in params]):
        return False
    return ksolver.key(_arrays(solver)) is not None


def _statics(solver):
    """(decays + clips (2 P,) floats, reg (P,)) on the host; SolverError for an
    unknown regularization type where a decay applies."""
    p = solver.param
    decays, reg, clips = [], [], []
    for decay_mult, clip in zip(solver.net.params_weight_decay, solver.net.params_clip_data):
        local_decay = p.weight_decay * decay_mult
        kind = 0
        if local_decay:
            kind = _REGULARIZATION.get(p.regularization_type)
            if kind is None:
                raise SolverError("Unknown regularization type: %s (known: L2, L1)"
                                  % p.regularization_type)
        decays.append(local_decay)
        reg.append(kind)
        clips.append(clip if clip > 0 else -1.0)
    return decays + clips, reg


def _table(solver, arrays):
    """(table, decays + clips, reg on the device), rebuilt when the arrays or
    the multipliers changed."""
    p = solver.param
    key = (ksolver.key(arrays), p.weight_decay, p.regularization_type,
           tuple(solver.net.params_weight_decay), tuple(solver.net.params_clip_data))
    cached = getattr(solver, "_fused_cache", None)
    if cached is None or cached[0] != key:
        statics, reg = _statics(solver)
        table = ksolver.ParamTable(arrays)
        cached = (key, table, statics, table.per_param(reg, "u1"))
        solver._fused_cache = cached
    return cached[1:]


def apply_update(solver, rate, apply=True):
    """The update of one iteration, fused (after the rate was logged); without
    ``apply`` the update values are left in the diffs and the data untouched
    (the solver checks them, then applies them with ``update_params``)."""
    table, statics, reg = _table(solver, _arrays(solver))
    scale = solver.clip_scale(lambda: ksolver.sum_of_squares(table))
    iter_size = solver.param.iter_size
    per_param = table.per_param(solver.fused_rates(rate) + statics)
    ksolver.update(solver.fused_rule, table, per_param, reg,
                   1.0 if scale is None else scale,
                   1.0 if iter_size == 1 else 1.0 / iter_size, solver.fused_constants(),
                   apply=apply)
