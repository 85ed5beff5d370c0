"""Every kernel source compiles with NVIDIA's own compiler, NVRTC, for the
compute capabilities the GPU backend targets, in float and double, with no
GPU: CuPy's NVRTC binding (cupy-cuda12x and nvidia-cuda-nvrtc-cu12 install on
a CPU machine) compiles to PTX without a driver. A compile error fails here
with NVRTC's message (file, line, caret).

CI sets LOWBIT_REQUIRE_CUPY=1, so a missing NVRTC fails instead of skipping.
"""
import os

import pytest

from pycaffe_lowbit.kernels import loader, source

ARCHS = ("compute_75", "compute_80", "compute_90")


def _nvrtc():
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as exc:          # not installed, or libnvrtc not found
        if os.environ.get("LOWBIT_REQUIRE_CUPY"):
            raise
        pytest.skip("NVRTC not available (pip install cupy-cuda12x "
                    "nvidia-cuda-nvrtc-cu12): %s" % exc)
    return nvrtc


def compile_ptx(family, arch):
    """PTX of the family for ``arch``, every kernel instantiated; NVRTCError
    with the program log on failure."""
    nvrtc = _nvrtc()
    program = nvrtc.createProgram(source.read(family), family + ".cu", [], [])
    try:
        for kernel in loader.signatures(family).values():
            for expression in kernel.expressions():
                nvrtc.addNameExpression(program, expression)
        options = ["--gpu-architecture=" + arch, *loader.NVRTC_OPTIONS]
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError as exc:
            raise AssertionError("%s.cu does not compile for %s:\n%s"
                                 % (family, arch, nvrtc.getProgramLog(program))) from exc
        return nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", source.families())
def test_family_compiles_with_nvrtc(family, arch):
    ptx = compile_ptx(family, arch)
    text = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert ".target sm_%s" % arch.split("_")[1] in text
    for kernel in loader.signatures(family).values():
        assert kernel.name in text, "%s missing from the PTX of %s.cu" % (kernel.name, family)


def test_a_misspelt_identifier_fails_with_nvrtcs_message(tmp_path, monkeypatch):
    _nvrtc()
    prelude = os.path.join(source.FOLDER, source.PRELUDE)
    (tmp_path / source.PRELUDE).write_text(open(prelude).read())
    (tmp_path / "bad.cu").write_text(
        "template <typename T>\n__global__ void lowbit_bad(const index_t n, T* y) {\n"
        "  LOWBIT_KERNEL_LOOP(i, n) { y[i] = slop; }\n}\n")
    monkeypatch.setattr(source, "FOLDER", str(tmp_path))
    monkeypatch.setattr(loader, "_signatures", {})
    with pytest.raises(AssertionError, match=r'bad.cu\(3\): error: identifier "slop" is '
                                             r'undefined'):
        compile_ptx("bad", "compute_80")
