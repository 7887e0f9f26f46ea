"""Differential fuzzing of every op on every device against its NumPy reference.

``values`` draws inputs (shapes, views, special values), ``spec`` defines what a fuzzed op is
and its tolerance, ``harness`` runs a case on a device and judges it, and the ``table_*``
modules hold one spec per op, by family; ``table`` gathers them and lists the ops that are
not fuzzed, with the reason. The tests are ``tests/test_fuzz_*.py``.
"""
