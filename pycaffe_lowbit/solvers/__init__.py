"""Caffe's solvers: the training loop (``base.Solver``) and its update rules.

``get_solver(path_or_param)`` builds the solver named by the SolverParameter's
``type`` (a legacy ``solver_type`` enum is upgraded to it first), as pycaffe's
``caffe.get_solver``; the classes (``SGDSolver(path)`` ...) build their own rule
whatever ``type`` says, as pycaffe's constructors do.
"""
from .base import Solver, SolverError, load_solver_param
from .lr_policy import LearningRatePolicyError, learning_rate
from .sgd import SGDSolver, NesterovSolver
from .adaptive import AdaGradSolver, RMSPropSolver, AdaDeltaSolver, AdamSolver

SOLVER_TYPES = {cls.type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver,
                                          RMSPropSolver, AdaDeltaSolver, AdamSolver)}


def solver_type_list():
    return sorted(SOLVER_TYPES)


def get_solver(param):
    """A solver for a SolverParameter or solver prototxt path, chosen by ``type``."""
    param = load_solver_param(param)
    cls = SOLVER_TYPES.get(param.type)
    if cls is None:
        raise SolverError("Unknown solver type: %s (known types: %s)"
                          % (param.type, ", ".join(solver_type_list())))
    return cls(param)


__all__ = ["Solver", "SolverError", "LearningRatePolicyError", "learning_rate",
           "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "SOLVER_TYPES", "solver_type_list",
           "get_solver", "load_solver_param"]
