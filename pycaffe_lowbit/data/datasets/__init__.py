"""Embedded datasets: small real data bundled with the package, built into
Caffe databases on demand (this machine cannot download datasets).

``digits``: the UCI 8x8 handwritten digits as train/test LMDBs and a mean.
``ensure_embedded(source)`` is the Data layer's hook: a missing database at
one of an embedded dataset's canonical paths is built there.
"""
from .digits import ensure_embedded

__all__ = ["ensure_embedded"]
