"""Faults for the tests: an ENOSPC injected into the atomic writes, and a real
tiny filesystem (a tmpfs mount, where the machine lets us mount one)."""
import contextlib
import errno
import os
import shutil
import subprocess

import pytest

from pycaffe_lowbit.layers.python_layer import PyLayer


def _fd_path(fd):
    try:
        return os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        pytest.skip("needs /proc/self/fd to tell which file an fsync is for")


@contextlib.contextmanager
def enospc_when_writing(monkeypatch, final_name_end):
    """Make the fsync of the temporary file written for a final name ending in
    ``final_name_end`` fail with ENOSPC, as a full disk makes a write fail.
    Yields the list of temporary paths the injection hit."""
    real_fsync = os.fsync
    hit = []

    def fsync(fd):
        path = _fd_path(fd)
        base = os.path.basename(path)
        # atomic_output's temporary file: ".<final basename>.<random>.tmp"
        if base.startswith(".") and base.endswith(".tmp") \
                and base[1:].rsplit(".", 2)[0].endswith(final_name_end):
            hit.append(path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    yield hit
    monkeypatch.setattr(os, "fsync", real_fsync)


def can_mount():
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount") \
        and shutil.which("umount")


@contextlib.contextmanager
def tiny_filesystem(folder, kib):
    """A tmpfs of ``kib`` KiB mounted on ``folder`` (created), unmounted after;
    skips the test where mounting is not allowed."""
    if not can_mount():
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    os.makedirs(folder, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % kib, "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here: %s" % done.stderr.strip())
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def free_bytes(folder):
    st = os.statvfs(str(folder))
    return st.f_bavail * st.f_frsize


def fill(folder, leave):
    """Write a filler file in ``folder`` so that about ``leave`` bytes stay free."""
    size = max(free_bytes(folder) - leave, 0)
    with open(os.path.join(str(folder), "filler"), "wb") as f:
        f.write(b"\0" * size)


class NanAt(PyLayer):
    """A Python layer (``module: "support.faults" layer: "NanAt"``): the
    identity, except that call number K (1-based) of the method named in
    ``param_str`` ("forward:K" or "backward:K") writes NaN into its output
    (forward: the top; backward: the bottom's gradient)."""

    def setup(self, bottom, top):
        method, k = self.param_str.split(":")
        self.method, self.at, self.calls = method, int(k), {"forward": 0, "backward": 0}

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def _poison(self, method):
        self.calls[method] += 1
        return self.method == method and self.calls[method] == self.at

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data
        if self._poison("forward"):
            top[0].data[0] = float("nan")

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff
        if self._poison("backward"):
            bottom[0].diff[0] = float("nan")
