"""A backend lists the devices it found but cannot use (``Backend.unavailable_devices``): they
get no index, and ``tc.devices(all=True)``, ``tensorcore devices`` and placement errors give
their reason, beside the backend's usable devices (the out-of-tree ``sim`` backend has one)."""

from __future__ import annotations

import pytest

import tensorcore as tc
from tensorcore import registry

pytestmark = pytest.mark.usefixtures("sim_backend")


def test_a_device_that_cannot_be_used_is_listed_with_its_reason_beside_the_others() -> None:
    sims = [d for d in tc.devices(all=True) if d.backend == "sim"]
    assert [str(d.device) for d in sims if d.available] == ["sim:0", "sim:1"]
    [unusable] = [d for d in sims if not d.available]
    assert unusable.name == "simulated device 2" and "failed its self-test. Fix:" in unusable.reason
    assert all(d.available for d in tc.devices()), "tc.devices() lists only usable devices"


def test_asking_for_it_names_the_reason() -> None:
    reason = registry.unavailable_reason(tc.Device("sim:2"))
    assert "sim:2 does not exist" in reason and "failed its self-test" in reason
    with tc.placement_policy("strict"), pytest.raises(tc.PlacementError, match="failed its self-test"):
        tc.zeros(2, device="sim:2")
