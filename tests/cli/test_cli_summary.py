"""lowbit-caffe summary: the table on stdout, --weights, --input_shape, errors."""
import os
import subprocess
import sys

from support import paths

ROOT = paths.ROOT
HWGQ = os.path.join(ROOT, "models", "alexnet_hwgq")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pycaffe_lowbit.cli", "summary", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_summary_prints_the_table_and_totals():
    out = run(os.path.join(HWGQ, "deploy.prototxt"))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0] == "Net CaffeNet" and lines[1].split()[:3] == ["layer", "type", "top"]
    conv2 = next(line for line in lines if line.startswith("conv2 "))
    assert conv2.split()[:2] == ["conv2", "BinaryConvolution"]
    assert "447,897,600" in conv2                                   # MACs per image
    assert "Params: 62,387,919 (1-bit 58,236,928, 32-bit 4,150,991)" in out.stdout
    assert "MACs per item: 1,135,256,096 (2-bit 1,025,744,896, 32-bit 109,511,200)" in out.stdout
    assert "10.4x smaller than float32" in out.stdout
    assert "Creating Layer" not in out.stderr                      # the build is quiet
    assert "deprecated" not in out.stderr and "upgrade" not in out.stderr  # an Input layer


def test_train_val_needs_its_data_or_an_input_shape():
    train_val = os.path.join(HWGQ, "train_val.prototxt")
    out = run(train_val)
    assert out.returncode == 1 and "--input_shape N,C,H,W" in out.stderr
    out = run(train_val, "--input_shape", "1,3,227,227")
    assert out.returncode == 0 and "Params: 62,387,919" in out.stdout
    out = run(train_val, "--input_shape", "1,3,227,227", "--phase", "TRAIN")
    assert out.returncode == 1 and "TEST phase" in out.stderr


def test_missing_file_is_one_error_line(tmp_path):
    out = run(str(tmp_path / "nothere.prototxt"))
    assert out.returncode == 1 and "nothere.prototxt" in out.stderr
    assert "Traceback" not in out.stderr
