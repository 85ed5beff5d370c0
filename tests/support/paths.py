"""Where things are, for every test: the repository, the tests' fixtures
(official Caffe's golden outputs, see fixtures/golden/FORMAT.md) and ../shared
(the seed files; tests that need it skip without it)."""
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
SEEDS = os.path.join(SHARED, "seeds")
FIXTURES = os.path.join(TESTS, "fixtures")
GOLDEN = os.path.join(FIXTURES, "golden")
