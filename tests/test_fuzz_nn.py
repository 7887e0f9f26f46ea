"""Differential fuzzing of the neural-network ops: matmul, linear, softmax, losses, conv, pooling, batch norm (tests/fuzz/table_nn.py) on every
device against NumPy. ``--fuzz-examples N`` raises the budget."""

from __future__ import annotations

import pytest
from fuzz.harness import fuzz
from fuzz.table import FAMILIES


@pytest.mark.parametrize("name", sorted(FAMILIES["nn"]))
def test_nn_op_matches_numpy(name: str, device: str, request: pytest.FixtureRequest) -> None:
    """Op ``name`` on ``device`` agrees with its NumPy reference on drawn inputs, refuses what
    NumPy refuses, and leaves its inputs unchanged."""
    fuzz(FAMILIES["nn"][name], device, request.config)
