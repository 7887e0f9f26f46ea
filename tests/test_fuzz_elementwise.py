"""Differential fuzzing of the elementwise ops (tests/fuzz/table_elementwise.py) on every
device against NumPy: shapes with 0- and 1-sized dimensions, broadcasting, views, every dtype,
Python scalars, special values. ``--fuzz-examples N`` raises the budget."""

from __future__ import annotations

import pytest
from fuzz.harness import fuzz
from fuzz.table import FAMILIES


@pytest.mark.parametrize("name", sorted(FAMILIES["elementwise"]))
def test_elementwise_op_matches_numpy(name: str, device: str, request: pytest.FixtureRequest) -> None:
    """Op ``name`` on ``device`` agrees with its NumPy reference on drawn inputs, refuses what
    NumPy refuses, and leaves its inputs unchanged."""
    fuzz(FAMILIES["elementwise"][name], device, request.config)
