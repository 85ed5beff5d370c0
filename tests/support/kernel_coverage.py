"""Which kernels a piece of code launches under emulation: the family tests of
tests/kernels assert that their layers take the kernel path and that no
kernel of the family is dead."""
import contextlib

from pycaffe_lowbit import kernels
from pycaffe_lowbit.kernels import emulation, loader


@contextlib.contextmanager
def launches():
    """Inside: kernels emulated; the yielded set fills with the (family,
    kernel) pairs launched."""
    before = emulation.launched.copy()
    seen = set()
    with kernels.emulate():
        yield seen
    seen.update(k for k, count in emulation.launched.items() if count > before.get(k, 0))


def every_kernel(family):
    """{(family, kernel)} for every host-runnable kernel of the family."""
    device_only = set(kernels.DEVICE_ONLY.get(family, ()))
    return {(family, name) for name in loader.signatures(family) if name not in device_only}
