"""Hypothesis profiles for the property tests (tests/layers/test_layer_properties.py,
tests/solvers/test_solver_properties.py).

* ``ci`` (the default): derandomized (the same examples on every run), a
  bounded number per test, no example database: a few minutes in CI.
* ``long``: random, ten times the examples, the database in .hypothesis/:
  for local runs that hunt for new failures.

Pick one with ``LOWBIT_HYPOTHESIS_PROFILE=long python -m pytest ...`` or
Hypothesis' own ``--hypothesis-profile=long``. ``--hypothesis-show-statistics``
prints the examples tried per test (one test per layer type).
"""
import os

from hypothesis import HealthCheck, settings

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

settings.register_profile("ci", max_examples=40, derandomize=True, deadline=None,
                          database=None, suppress_health_check=_SLOW, print_blob=True)
settings.register_profile("long", max_examples=400, deadline=None,
                          suppress_health_check=_SLOW, print_blob=True)
settings.load_profile(os.environ.get("LOWBIT_HYPOTHESIS_PROFILE", "ci"))

