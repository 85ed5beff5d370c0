"""Each low-bit method learns the bundled digits end to end: the digits
models' LeNet-style net with its weight layers made TWN, SQ-BWN, SQ-TWN (SQ
with ratio 50: half the filters in full precision, redrawn every forward) and
HWGQ (BatchNorm -> 2-bit "3ne" Quant -> binary weights), trained by our
solver for 200 iterations. Accuracy must be far above chance (10 %)."""
import os
import re

import pytest

import pycaffe_lowbit as caffe
from pycaffe_lowbit.data.datasets.digits import build_digits
from support import paths

ROOT = paths.ROOT
HWGQ_3NE = 'quant_param { forward_func: "hwgq" centers: 0.538 centers: 1.076 ' \
           'centers: 1.614 clip_thr: 1.614 }'


def sq(text):
    return text.replace("convolution_param {", "convolution_param { sq: true ratio: 50") \
               .replace("inner_product_param {", "inner_product_param { sq: true ratio: 50")


def ternary(text):
    return text.replace('"BinaryConvolution"', '"TernaryConvolution"') \
               .replace('"BinaryInnerProduct"', '"TernaryInnerProduct"')


def hwgq(_):
    text = open(os.path.join(ROOT, "models", "digits_bnn", "train_test.prototxt")).read()
    text = re.sub(r'quant_param \{[^}]*\}', HWGQ_3NE, text)
    assert text.count('forward_func: "hwgq"') >= 2
    return text


# SQ at ratio 50 in this short, high-lr recipe trains less smoothly than plain
# BWN/TWN (the half of the filters kept in float changes at every forward, in
# TEST too, as in the fork): measured 0.71 (SQ-BWN) and 0.85 (SQ-TWN) against
# 0.95 for BWN; at base_lr 0.01 SQ-BWN and BWN are level (0.82 / 0.86).
METHODS = {  # name: (rewrite of digits_bwn's net, accuracy floor)
    "twn": (ternary, 0.85),
    "sq_bwn": (sq, 0.6),
    "sq_twn": (lambda t: sq(ternary(t)), 0.6),
    "hwgq_3ne": (hwgq, 0.75),
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    build_digits(str(out))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHODS))
def test_method_learns_the_digits(method, digits, tmp_path):
    rewrite, floor = METHODS[method]
    net = rewrite(open(os.path.join(ROOT, "models", "digits_bwn", "train_test.prototxt")).read())
    net = net.replace("data/digits/", str(digits) + "/")
    (tmp_path / "net.prototxt").write_text(net)
    (tmp_path / "solver.prototxt").write_text(
        'net: "%s"\ntest_iter: 1\ntest_interval: 1000\nbase_lr: 0.05\nmomentum: 0.9\n'
        'weight_decay: 0.0005\nlr_policy: "poly"\npower: 1\nmax_iter: 200\ndisplay: 0\n'
        'snapshot_after_train: false\nrandom_seed: 1701\n' % (tmp_path / "net.prototxt"))
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    types = {layer.type for layer in solver.net.layers}
    assert types & {"TernaryConvolution", "BinaryConvolution"}
    solver.step(200)
    test_net = solver.test_nets[0]
    test_net.forward()
    accuracy = float(test_net.blobs["accuracy"].data)
    assert accuracy >= floor, "%s: accuracy %.3f" % (method, accuracy)
