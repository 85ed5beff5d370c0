"""Compiled CPU kernels (Numba) for the work NumPy cannot do in one pass.

Each kernel here has a NumPy reference that its test compares it with; the
layers call a kernel only on NumPy arrays, and fall back to their NumPy path
when Numba is missing (``jit.available()``) or turned off with
``LOWBIT_NUMBA=0``.
"""
