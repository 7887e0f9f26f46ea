"""Differential fuzzing of the movement and indexing ops, with the in-place writes (tests/fuzz/table_movement.py) on every
device against NumPy. ``--fuzz-examples N`` raises the budget."""

from __future__ import annotations

import pytest
from fuzz.harness import fuzz
from fuzz.table import FAMILIES


@pytest.mark.parametrize("name", sorted(FAMILIES["movement"]))
def test_movement_op_matches_numpy(name: str, device: str, request: pytest.FixtureRequest) -> None:
    """Op ``name`` on ``device`` agrees with its NumPy reference on drawn inputs, refuses what
    NumPy refuses, and leaves its inputs unchanged."""
    fuzz(FAMILIES["movement"][name], device, request.config)
