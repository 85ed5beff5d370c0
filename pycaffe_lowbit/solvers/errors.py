"""The solver's error: a SolverParameter that Caffe's solver rejects."""


class SolverError(ValueError):
    """A SolverParameter that Caffe's solver rejects (a failed CHECK)."""


def _check(condition, message):
    if not condition:
        raise SolverError(message)
