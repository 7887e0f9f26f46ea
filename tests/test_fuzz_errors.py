"""Failing calls, fuzzed on every device: an input an op must refuse (tests/fuzz/table_invalid.py)
raises an ``OpError`` naming the op (at the call, or at the next read on an asynchronous device)
and leaves every input unchanged, an in-place op's target included."""

from __future__ import annotations

import pytest
from fuzz.harness import check_refused, fuzz
from fuzz.table import SPECS
from fuzz.table_invalid import INVALID


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_call_is_refused_and_changes_nothing(name: str, device: str, request: pytest.FixtureRequest) -> None:
    """Op ``name`` on ``device`` refuses drawn invalid inputs clearly, and writes nothing."""
    fuzz(SPECS[name], device, request.config, check=check_refused, cases=INVALID[name])
