"""Every registered layer type's Hypothesis strategy, by family, and the
examples weight of the expensive ones (recurrent nets, data layers)."""
from . import cases_neuron, cases_structure, cases_vision

CASES = {}
for family in (cases_neuron, cases_vision, cases_structure):
    CASES.update(family.CASES)

# Fewer examples for the layers whose one example costs a lot.
WEIGHTS = {}
