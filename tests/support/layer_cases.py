"""Every registered layer type's Hypothesis strategy, by family."""
from . import cases_data, cases_loss, cases_neuron, cases_structure, cases_vision

CASES = {}
for family in (cases_neuron, cases_vision, cases_structure, cases_loss, cases_data):
    CASES.update(family.CASES)
