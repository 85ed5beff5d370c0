"""The model folders of ``models/`` for the seeds' low-bit methods, written with NetSpec.

``sq`` builds the Stochastic Quantization fork's folders (VGG-9 and ResNet-56
for CIFAR, AlexNet-BN and ResNet-18 for ImageNet, each in FWN, BWN, TWN,
SQ-BWN and SQ-TWN), ``hwgq`` the HWGQ fork's (AlexNet in three activation
quantizers, ResNet-18/34/50, VGG-Variant, GoogLeNet, DarkNet-19, the CIFAR-10
VGG, LeNet). ``render()`` gives every file's text keyed by its path under
``models/``; ``write()`` writes them; ``differences()`` compares them with a
directory. ``tools/make_models.py`` is the command; a test fails when the
committed ``models/`` differ from what the generator writes.
"""
import os

from . import hwgq, sq
from .model import Model

__all__ = ["Model", "all_models", "render", "write", "differences"]


def all_models():
    """Every generated model folder, SQ fork first, in a fixed order."""
    return sq.models() + hwgq.models()


def render(models=None):
    """``{path under models/: text}`` for every file of ``models`` (default: all)."""
    texts = {}
    for model in all_models() if models is None else models:
        texts.update(model.texts())
    return texts


def write(root, texts=None):
    """Write ``texts`` (default: ``render()``) under ``root``; return the paths
    whose content changed."""
    changed = []
    for rel, text in sorted((render() if texts is None else texts).items()):
        path = os.path.join(root, rel)
        if _read(path) == text:
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        changed.append(rel)
    return changed


def differences(root, texts=None):
    """What is not as the generator writes it under ``root``: lines "missing
    PATH", "differs PATH" and "extra PATH" (a prototxt or README in a
    generated folder that the generator does not write)."""
    texts = render() if texts is None else texts
    out = []
    for rel, text in sorted(texts.items()):
        found = _read(os.path.join(root, rel))
        if found != text:
            out.append("%s %s" % ("missing" if found is None else "differs", rel))
    for folder in sorted({rel.split("/")[0] for rel in texts}):
        for name in sorted(os.listdir(os.path.join(root, folder))) \
                if os.path.isdir(os.path.join(root, folder)) else ():
            rel = "%s/%s" % (folder, name)
            if name.endswith((".prototxt", ".md")) and rel not in texts:
                out.append("extra " + rel)
    return out


def _read(path):
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        return None
