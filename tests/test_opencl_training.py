"""The main job on OpenCL: same seed, same loss curve as cpu, and no op falls back."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import train

if "opencl:0" not in [str(d.device) for d in tc.devices()]:
    pytest.skip("no OpenCL device here (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)", allow_module_level=True)


def test_training_on_opencl_matches_cpu_with_no_fallbacks() -> None:
    cpu = train.train(epochs=3, seed=0, device="cpu", progress=False, log=lambda _: None)
    tc.reset_placement_stats()
    cl = train.train(epochs=3, seed=0, device="opencl", progress=False, log=lambda _: None)
    stats = tc.placement_stats()
    assert stats["fallbacks"] == {}, f"ops that fell back to cpu while training on opencl: {stats['fallbacks']}"
    assert set(stats["ops_per_device"]) == {"opencl:0"}
    # Same data, same initial weights, same dropout masks: only float32 summation order differs.
    np.testing.assert_allclose(cl.losses, cpu.losses, rtol=2e-3)
    assert abs(cl.accuracies[-1] - cpu.accuracies[-1]) <= 0.02
