"""The rules of ARCHITECTURE.md, checked on the source: no import cycle in the
package, quantizers are leaves (over the backend and their GPU and CPU
kernels), the GPU kernels import only the backend and the CPU kernels nothing
of the package, only the backend imports CuPy, layers know nothing of
training, nothing imports the command line, no file past ~400 lines.

Imports are read from the source (every ``import``, at module level or inside a
function), so a cycle that Python happens to tolerate at run time still fails.
Importing ``a.b.c`` also runs the packages ``a.b`` (``a/b/__init__.py``) on the
way: that counts as an import of ``a.b``, except for the packages that hold the
importing module (they are already running) and the top package (every import
passes through it).
"""
import ast
import os

import pytest

from support import paths

PACKAGE = "pycaffe_lowbit"
PACKAGE_DIR = os.path.join(paths.ROOT, PACKAGE)
MAX_LINES = 400
GENERATED = {"pycaffe_lowbit/proto/caffe_pb2.py"}   # protoc's output


def _modules():
    """{module name: path} for every .py file of the package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, paths.ROOT)[:-3].replace(os.sep, ".")
                found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = path
    return found


MODULES = _modules()


def _imports(module, path, modules=MODULES):
    """The package modules ``module`` imports (a name imported from a package
    counts as that submodule when it is one)."""
    is_package = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in (PACKAGE, "cupy",
                                                                              "cupyx"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[:len(module.split(".")) - (0 if is_package else 1)]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                full = target + "." + alias.name
                out.add(full if full in modules else target)
    out.discard(module)
    return out


def _packages_run_by(target, importer, modules=MODULES):
    """The subpackages an import of ``target`` runs before it, less the
    importer's own packages and the top package (those that import nothing
    of the package are dropped by the caller)."""
    parts = target.split(".")
    own = importer.split(".")
    found = set()
    for depth in range(2, len(parts)):
        parent = ".".join(parts[:depth])
        if parent in modules and own[:depth] != parts[:depth]:
            found.add(parent)
    return found


def _graph(modules):
    """{module: the modules it imports, and the package inits those imports run}."""
    direct = {m: _imports(m, p, modules) for m, p in modules.items()}
    return {m: imports | {parent for i in imports for parent in _packages_run_by(i, m, modules)
                          if direct.get(parent)}
            for m, imports in direct.items()}


GRAPH = _graph(MODULES)


def _cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _in(module, folder):
    prefix = PACKAGE + "." + folder
    return module == prefix or module.startswith(prefix + ".")


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_a_circle_through_a_package_init_inside_a_function_is_seen(tmp_path):
    """The circle issue 24 found: a package whose ``__init__`` imports, inside
    a function, a module that imports one of the package's submodules."""
    files = {"pkg/__init__.py": "def load():\n    from ..helpers import tool\n    return tool\n",
             "pkg/blob.py": "thing = 1\n",
             "helpers.py": "from .pkg.blob import thing\n\ntool = thing\n"}
    modules = {}
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        name = PACKAGE + "." + rel[:-3].replace("/", ".")
        modules[name[:-len(".__init__")] if name.endswith(".__init__") else name] = str(path)
    graph = _graph(modules)
    assert PACKAGE + ".pkg" in graph[PACKAGE + ".helpers"]
    assert _cycles(graph) == [[PACKAGE + ".helpers", PACKAGE + ".pkg"]]


def test_imports_inside_functions_are_read():
    """``pycaffe_lowbit.layers.base`` reads BlobProto in a function: the edge is there."""
    assert PACKAGE + ".formats.blobproto" in GRAPH[PACKAGE + ".layers.base"]


def test_quantizers_import_only_the_backend_and_their_kernels():
    for module, imports in GRAPH.items():
        if _in(module, "quant"):
            outside = {m for m in imports if m.startswith(PACKAGE) and not _in(m, "quant")
                       and not _in(m, "kernels") and not _in(m, "cpu")}
            assert outside <= {PACKAGE + ".core.backend"}, (module, outside)


def test_cpu_kernels_import_nothing_else_of_the_package():
    for module, imports in GRAPH.items():
        if _in(module, "cpu"):
            outside = {m for m in imports if m.startswith(PACKAGE) and not _in(m, "cpu")}
            assert not outside, (module, outside)


def test_kernels_import_only_the_backend():
    for module, imports in GRAPH.items():
        if _in(module, "kernels"):
            outside = {m for m in imports if m.startswith(PACKAGE) and not _in(m, "kernels")}
            assert outside <= {PACKAGE + ".core.backend"}, (module, outside)


def test_only_the_backend_imports_cupy():
    users = {m for m, imports in GRAPH.items()
             if any(i.split(".")[0] in ("cupy", "cupyx") for i in imports)}
    assert users <= {PACKAGE + ".core.backend"}


@pytest.mark.parametrize("folder", ["layers", "quant", "core"])
def test_layers_and_core_know_nothing_of_training_or_the_cli(folder):
    for module, imports in GRAPH.items():
        if _in(module, folder):
            bad = {m for m in imports if _in(m, "solvers") or _in(m, "cli")}
            assert not bad, (module, bad)


def test_nothing_imports_the_command_line():
    for module, imports in GRAPH.items():
        if not _in(module, "cli"):
            assert not {m for m in imports if _in(m, "cli")}, module


@pytest.mark.parametrize("top", [PACKAGE, "tests", "tools"])
def test_files_fit_a_screen(top):
    long = []
    for folder, _, files in os.walk(os.path.join(paths.ROOT, top)):
        if "fixtures" in folder.split(os.sep):
            continue
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, paths.ROOT).replace(os.sep, "/")
            if name.endswith(".py") and rel not in GENERATED:
                with open(path) as f:
                    n = sum(1 for _ in f)
                if n > MAX_LINES:
                    long.append("%s: %d lines" % (rel, n))
    assert not long, "files past %d lines: %s" % (MAX_LINES, ", ".join(long))
