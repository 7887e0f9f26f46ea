"""Errors that say what was wrong (issue 12, defects 2 and 7), on every device.

- Inputs that no kernel accepts raise the op's own error (its shape and dtype rule), under soft
  and strict placement alike: no "running it on cpu" warning, no copy, no counted fallback, no
  ``PlacementError`` advising soft placement. A kernel that declines inputs the op does take
  (a dtype it lacks) still falls back (soft) or raises ``PlacementError`` (strict).
- ``take`` errors say ``take``; ``placement_report`` returns its text without printing it;
  dropout's mask is not reported as an explicit copy in the traced code.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import tensorcore as tc
import tensorcore.nn.functional as F

# (what, inputs on a device -> the call, the rule's message)
REFUSED = [
    ("matmul inner dims", lambda d: (tc.ones((2, 3), device=d), tc.ones((4, 5), device=d)), tc.matmul,
     r"matmul: inner dimensions differ: x1 has shape \(2, 3\)"),
    ("matmul 0-d", lambda d: (tc.asarray(1.0, device=d), tc.ones((3,), device=d)), tc.matmul,
     r"matmul: inputs must be at least 1-D, got shapes \(\) and \(3,\)"),
    ("linear features", lambda d: (tc.ones((2, 3), device=d), tc.ones((4, 5), device=d)), F.linear,
     r"linear: input of shape \(2, 3\) has 3 features but weight \(4, 5\) expects in_features=5"),
    ("bitwise_and floats", lambda d: (tc.ones((3,), device=d), tc.ones((3,), device=d)), tc.bitwise_and,
     r"bitwise_and does not take inputs of dtype \(float32, float32\).*cast them with astype\(\)"),
]


@pytest.mark.parametrize("policy", ["soft", "strict"])
@pytest.mark.parametrize("what, make, fn, match", REFUSED, ids=[case[0] for case in REFUSED])
def test_inputs_no_kernel_accepts_raise_the_ops_error_with_no_fallback(
        device: str, policy: str, what: str, make: object, fn: object, match: str,
        caplog: pytest.LogCaptureFixture) -> None:
    inputs = make(device)
    tc.reset_placement_stats()
    with caplog.at_level(logging.WARNING, logger="tensorcore.placement"), tc.placement_policy(policy):
        with pytest.raises(tc.OpError, match=match):
            fn(*inputs)
    stats = tc.placement_stats()
    assert stats["fallbacks"] == {} and stats["bytes_copied"] == 0, stats
    assert not [r for r in caplog.records if "running it on cpu" in r.getMessage()]


def test_a_kernel_that_declines_inputs_the_op_takes_still_falls_back(device: str) -> None:
    """int32 matmul is valid; opencl has no integer GEMM: soft falls back (counted), strict raises
    PlacementError naming the op, the device and the reason. Where a kernel takes it, it just runs."""
    a = tc.asarray(np.arange(6, dtype=np.int32).reshape(2, 3), device=device)
    b = tc.asarray(np.arange(6, dtype=np.int32).reshape(3, 2), device=device)
    expected = np.arange(6).reshape(2, 3) @ np.arange(6).reshape(3, 2)
    tc.reset_placement_stats()
    np.testing.assert_array_equal(tc.matmul(a, b).numpy(), expected)
    declined = tc.placement_stats()["fallbacks"] == {f"matmul@{tc.Device(device)}": 1}
    assert declined == (tc.Device(device).type == "opencl")
    with tc.placement_policy("strict"):
        if declined:
            with pytest.raises(tc.PlacementError, match=rf"'matmul' on {tc.Device(device)}: .*int32"):
                tc.matmul(a, b)
        else:
            np.testing.assert_array_equal(tc.matmul(a, b).numpy(), expected)


def test_take_errors_name_take_its_indices_and_axis(device: str) -> None:
    x = tc.ones((3, 4), device=device)
    for indices, axis, size in (([5], 0, 3), ([-7], 1, 4)):
        # cpu raises at the call; a device's kernel checks the indices and it raises at the next read
        with pytest.raises(tc.OpError) as caught:
            tc.take(x, tc.asarray(indices, device=device), axis=axis).numpy()
        message = str(caught.value)
        assert message.startswith(f"take: invalid indices int64[1] along axis {axis} of a tensor of shape (3, 4)")
        assert f"out of bounds for axis {axis} with size {size}" in message and "getitem" not in message
    # x[...] is still getitem (late, on a device: "getitem: index 5 is out of bounds ...")
    with pytest.raises(tc.OpError, match=r"^getitem: (invalid )?index"):
        x[tc.asarray([5], device=device)].numpy()


def test_placement_report_returns_its_text_and_prints_nothing(device: str, capsys: pytest.CaptureFixture) -> None:
    f = tc.function(lambda x: x * 2.0)
    report = f.placement_report(tc.ones((2,), device=device))
    assert capsys.readouterr().out == ""  # a REPL shows the returned text once
    assert report.startswith("placement of ") and "multiply_1" in report and f"{tc.Device(device)}" in report


def test_dropouts_mask_is_reported_as_drawn_on_the_host_not_as_an_explicit_copy(device: str) -> None:
    f = tc.function(lambda x: F.dropout(x, 0.5))
    lines = f.placement_report(tc.ones((4,), device=device)).splitlines()
    assert not [line for line in lines if "explicit copy" in line]
    random = next(line for line in lines if line.strip().startswith("random_"))
    assert "tc.random draws on the host" in random
    if tc.Device(device).type != "cpu":
        copy = next(line for line in lines if line.strip().startswith("transfer_"))
        assert "draws on the host (tc.random, dropout's mask): its values are copied to" in copy
    g = tc.function(lambda x: x.to_device("cpu") + 1.0)  # a copy the user wrote is still called one
    if tc.Device(device).type != "cpu":
        assert "an explicit copy (to_device" in g.placement_report(tc.ones((4,), device=device))
