"""convert_cifar reads CIFAR's pickled python batches with a restricted
unpickler: a crafted batch cannot run code, write files or smuggle objects in;
each attempt is one error naming the file, and nothing runs."""
import os
import pickle
import subprocess

import numpy as np
import pytest

from pycaffe_lowbit.data import DataError
from pycaffe_lowbit.data.tools.cifar import convert_cifar, load_batch


class Call:
    """Pickles as a call of ``fn(*args)`` (what a crafted file can ask for)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def batch(value, protocol=2):
    return pickle.dumps({b"data": value, b"labels": [0]}, protocol=protocol)


# name -> (payload for a marker path, whether unrestricted pickle would run code)
CRAFTED = {
    "os.system": (lambda m: batch(Call(os.system, "touch %s" % m)), True),
    "builtins.eval": (lambda m: batch(Call(eval, "open(%r, 'w').close()" % m)), True),
    "builtins.exec": (lambda m: batch(Call(exec, "open(%r, 'w').close()" % m)), True),
    "subprocess.call": (lambda m: batch(Call(subprocess.call, ["touch", m])), True),
    # protocol 4 names a method by its dotted qualified name: numpy, "ndarray.tofile"
    "ndarray.tofile": (lambda m: batch(Call(np.ndarray.tofile, np.zeros(3, np.uint8), m),
                                       protocol=4), True),
    "a class of the package": (lambda m: batch(DataError("x")), False),
    "an array of objects": (lambda m: batch(np.array([{"a": 1}], dtype=object)), False),
}


@pytest.mark.parametrize("name", sorted(n for n, (_, runs) in CRAFTED.items() if runs))
def test_unrestricted_pickle_would_run_them(tmp_path, name):
    """The payloads are real: plain ``pickle.loads`` obeys them."""
    marker = tmp_path / "pwned"
    pickle.loads(CRAFTED[name][0](str(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_batch_cannot_run_code(tmp_path, name):
    marker = tmp_path / "pwned"
    payload = CRAFTED[name][0](str(marker))
    (tmp_path / "bad").write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError):
        load_batch(str(tmp_path / "bad"))
    assert not marker.exists()
    folder = tmp_path / "cifar"
    folder.mkdir()
    for part in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        (folder / part).write_bytes(payload)
    with pytest.raises(DataError, match=r"data_batch_1 is not a CIFAR python batch"):
        convert_cifar(str(folder), str(tmp_path / "out"))
    assert not marker.exists() and not os.listdir(tmp_path / "out")


def test_a_plain_batch_loads(tmp_path):
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    batch = {b"batch_label": b"training batch 1 of 5", b"labels": [3, 7], b"data": data,
             b"filenames": [b"a.png", b"b.png"]}
    (tmp_path / "ok").write_bytes(pickle.dumps(batch, protocol=2))
    got = load_batch(str(tmp_path / "ok"))
    assert got[b"labels"] == [3, 7] and got[b"filenames"] == [b"a.png", b"b.png"]
    np.testing.assert_array_equal(got[b"data"], data)
