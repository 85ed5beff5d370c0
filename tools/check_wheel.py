"""Check an installed (non-editable) pycaffe_lowbit against the checkout it
was built from: run with the installed environment's Python, from outside the
checkout (``.ci/run`` does, after ``python -m build``):

    /tmp/venv/bin/python CHECKOUT/tools/check_wheel.py CHECKOUT

Fails (exit 1, one line per problem) when the package imported is the
checkout's own, when a file the checkout has under ``pycaffe_lowbit/``
(tracked by git: modules, the digits CSV, CUDA sources...) is not installed,
when a module does not import, or when the embedded digits cannot be read.
"""
import importlib
import os
import subprocess
import sys


def tracked_package_files(checkout):
    """Paths under pycaffe_lowbit/ that git tracks, relative to the package."""
    out = subprocess.run(["git", "-C", checkout, "ls-files", "pycaffe_lowbit"],
                         capture_output=True, text=True, check=True).stdout
    return sorted(os.path.relpath(p, "pycaffe_lowbit") for p in out.split())


def main(checkout):
    import pycaffe_lowbit
    installed = os.path.dirname(os.path.abspath(pycaffe_lowbit.__file__))
    problems = []
    if installed.startswith(os.path.abspath(checkout) + os.sep):
        problems.append("pycaffe_lowbit was imported from the checkout (%s), not the "
                        "installed wheel" % installed)
    missing = [p for p in tracked_package_files(checkout)
               if not os.path.exists(os.path.join(installed, p))]
    problems += ["not installed (add it to pyproject.toml's package-data?): pycaffe_lowbit/%s"
                 % p for p in missing]
    for path in tracked_package_files(checkout):
        if not path.endswith(".py") or path.endswith("__main__.py"):
            continue
        module = "pycaffe_lowbit." + path[:-3].replace(os.sep, ".")
        module = module[:-len(".__init__")] if module.endswith(".__init__") else module
        try:
            importlib.import_module(module)
        except Exception as exc:          # noqa: BLE001 - report every failure
            problems.append("import %s: %s: %s" % (module, type(exc).__name__, exc))
    from pycaffe_lowbit.data.datasets import digits
    try:
        images, labels = digits.load_digits()
        if len(images) != len(labels) or len(labels) != 1797:
            problems.append("the embedded digits read %d images, %d labels"
                            % (len(images), len(labels)))
    except OSError as exc:
        problems.append("the embedded digits: %s" % exc)
    for line in problems:
        print("check_wheel: " + line)
    print("check_wheel: pycaffe_lowbit %s from %s: %s" % (
        pycaffe_lowbit.__version__, installed, "FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
