"""The model folders of models/ as the model_zoo tests see them: every model,
its files, the nets among them, those with a seed file in ../shared/seeds."""
import os

import pytest

from pycaffe_lowbit import model_zoo
from pycaffe_lowbit.model_zoo.model import IMAGENET, IMAGENET_227

from .paths import ROOT, SEEDS

MODELS = model_zoo.all_models()
BY_FOLDER = {m.folder: m for m in MODELS}
FILES = [(m, name) for m in MODELS for name in m.files]
NETS = [(m, name) for m, name in FILES if not name.startswith(("solver", "deploy"))]
SEEDED = [(m, name) for m, name in FILES
          if m.seed_dir and os.path.exists(os.path.join(SEEDS, m.seed_dir, name))]
BATCH = 2
needs_seeds = pytest.mark.skipif(not os.path.isdir(SEEDS), reason="../shared/seeds not present")

__all__ = ["ROOT", "SEEDS", "MODELS", "BY_FOLDER", "FILES", "NETS", "SEEDED", "BATCH",
           "needs_seeds", "_small", "_ids", "_text"]


def _small(model):
    """CIFAR and MNIST models: batch 2, nets run; ImageNet ones: batch 1, set up only."""
    return model.dataset not in (IMAGENET, IMAGENET_227)


def _ids(pairs):
    return ["%s/%s" % (m.folder, name) for m, name in pairs]


def _text(texts, model, name):
    return texts["%s/%s" % (model.folder, name)]
