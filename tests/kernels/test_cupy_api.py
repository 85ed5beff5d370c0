"""A static check of the code the GPU runs besides the kernels: every
array-module function the package calls as ``xp.<name>(...)`` (or on
``backend.cupy()``) exists in CuPy, and every keyword it passes is one that
CuPy's function accepts. CuPy imports without a GPU, so a NumPy-only function
or keyword cannot hide in a path only a device would take.

Calls are read from the source (ast): ``xp.f(...)``, ``xp.sub.f(...)``,
``self.xp.f(...)``, ``blob.xp.f(...)``, ``cupy.f(...)``.
"""
import ast
import inspect
import os

import pytest

from support import paths

PACKAGE = os.path.join(paths.ROOT, "pycaffe_lowbit")
RECEIVERS = {"xp", "cupy"}
# Keywords every CuPy ufunc takes (they are not Python functions).
UFUNC_KEYWORDS = {"out", "dtype", "casting"}


def _cupy():
    try:
        import cupy
    except ImportError as exc:
        if os.environ.get("LOWBIT_REQUIRE_CUPY"):
            raise
        pytest.skip("CuPy not installed (pip install cupy-cuda12x): %s" % exc)
    return cupy


def _dotted(node):
    """'xp.linalg.norm' for an attribute chain ending at a Name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def array_module_calls():
    """[(path:line, 'name.sub', [keywords])] for every call on an array module."""
    calls = []
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                target = node.func
                chain = []
                while isinstance(target, ast.Attribute) and target.attr not in RECEIVERS:
                    chain.append(target.attr)
                    target = target.value
                receiver = target.attr if isinstance(target, ast.Attribute) else \
                    target.id if isinstance(target, ast.Name) else None
                if receiver not in RECEIVERS or not chain:
                    continue
                where = "%s:%d" % (os.path.relpath(path, paths.ROOT), node.lineno)
                calls.append((where, ".".join(reversed(chain)),
                              [k.arg for k in node.keywords if k.arg]))
    return calls


def _resolve(cupy, dotted):
    obj = cupy
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _accepted(func):
    """The keywords ``func`` accepts (None: any, or unknown)."""
    if type(func).__name__ == "ufunc":
        return UFUNC_KEYWORDS
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def test_the_scan_finds_the_calls():
    names = {name for _, name, _ in array_module_calls()}
    assert {"matmul", "where", "zeros"} <= names


def test_every_array_module_call_exists_in_cupy_with_its_keywords():
    cupy = _cupy()
    problems = []
    for where, name, keywords in array_module_calls():
        func = _resolve(cupy, name)
        if func is None:
            problems.append("%s: cupy has no %s" % (where, name))
            continue
        accepted = _accepted(func)
        unknown = [k for k in keywords if accepted is not None and k not in accepted]
        if unknown:
            problems.append("%s: cupy.%s takes no keyword %s" % (where, name, ", ".join(unknown)))
    assert not problems, "\n".join(problems)
