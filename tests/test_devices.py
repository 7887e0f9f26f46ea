"""The device grammar, the default device, scopes and unavailable devices."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.device import default_device


@pytest.mark.parametrize(
    "spec,expected",
    [("cpu", "cpu:0"), ("cpu:0", "cpu:0"), ("CUDA", "cuda:0"), ("cuda:1", "cuda:1"),
     ("opencl", "opencl:0"), ("OpenCL:0", "opencl:0"), (" cuda : 2 ", "cuda:2")],
)
def test_device_strings_parse_case_insensitively_with_index_zero_by_default(spec: str, expected: str) -> None:
    dev = tc.Device(spec)
    assert str(dev) == expected
    assert dev is tc.Device(expected)  # interned: one object per device
    assert dev == expected


@pytest.mark.parametrize("spec", ["bogus", "cuda:x", "cuda:-1", "", "cpu:0:1", "gpu"])
def test_malformed_or_unknown_device_names_the_valid_forms_and_available_devices(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        tc.Device(spec)
    msg = str(info.value)
    assert "valid forms are" in msg and "'opencl:N'" in msg
    assert "Available devices here: cpu:0" in msg


def test_typo_gets_a_did_you_mean() -> None:
    with pytest.raises(ValueError, match="did you mean 'cuda'"):
        tc.Device("cdua:0")
    with pytest.raises(ValueError, match="did you mean 'opencl'"):
        tc.Device("opencll")


def test_unavailable_device_warns_once_and_uses_cpu_under_soft(caplog: pytest.LogCaptureFixture) -> None:
    from tensorcore import placement

    placement._warned.discard(("unavailable", tc.Device("cuda:3")))
    with caplog.at_level(logging.WARNING, logger="tensorcore.placement"):
        a = tc.asarray([1.0, 2.0], device="cuda:3")
        b = tc.zeros((2,), device="cuda:3")
    assert a.device == "cpu:0" and b.device == "cpu:0"
    warnings = [r.getMessage() for r in caplog.records if "cuda:3" in r.getMessage()]
    assert len(warnings) == 1 and "unavailable" in warnings[0] and "cpu:0" in warnings[0]


def test_unavailable_device_raises_under_strict() -> None:
    with tc.placement_policy("strict"), pytest.raises(tc.DeviceUnavailableError, match=r"cuda:0.*unavailable.*strict"):
        tc.asarray([1.0], device="cuda")


def test_device_scope_sets_where_new_tensors_and_ops_go() -> None:
    with tc.device("cpu") as dev:
        assert tc.current_device() is dev
        assert tc.ones((2,)).device is dev
    assert tc.current_device() is tc.default_device()


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORCORE_")} | env
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120)


def test_tensorcore_device_environment_variable_sets_the_default() -> None:
    ok = _run("import tensorcore as tc; print(tc.ones(2).device)", TENSORCORE_DEVICE="CPU:0")
    assert ok.returncode == 0 and ok.stdout.strip() == "cpu:0"
    bad = _run("import tensorcore as tc; tc.ones(2)", TENSORCORE_DEVICE="bogus")
    assert bad.returncode != 0 and "valid forms are" in bad.stderr
    soft = _run("import tensorcore as tc; print(tc.ones(2).device)", TENSORCORE_DEVICE="cuda")
    assert soft.returncode == 0 and soft.stdout.strip() == "cpu:0" and "unavailable" in soft.stderr
    strict = _run("import tensorcore as tc; tc.ones(2)", TENSORCORE_DEVICE="cuda", TENSORCORE_PLACEMENT="strict")
    assert strict.returncode != 0 and "DeviceUnavailableError" in strict.stderr


def test_synchronize_of_every_device_starts_no_backend() -> None:
    code = ("import tensorcore as tc; from tensorcore import registry; tc.synchronize(); "
            "print([e.name for e in registry.loaded_entries()]); tc.ones(2); tc.synchronize(); "
            "print([e.name for e in registry.loaded_entries()])")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "['cpu']"]


def test_bad_placement_policy_in_environment_is_rejected() -> None:
    bad = _run("import tensorcore", TENSORCORE_PLACEMENT="lenient")
    assert bad.returncode != 0 and "use 'soft' or 'strict'" in bad.stderr


def test_devices_lists_cpu_with_name_and_memory() -> None:
    infos = tc.devices()
    cpu = [i for i in infos if i.device == "cpu:0"]
    assert len(cpu) == 1 and cpu[0].backend == "cpu" and cpu[0].name and cpu[0].memory_bytes > 0


def test_to_device_and_array_namespace(device: str) -> None:
    x = tc.asarray(np.arange(3.0), device=device)
    assert x.to_device(device) is x
    y = x.to_device("cpu")
    assert y.device == "cpu:0"
    np.testing.assert_array_equal(y.numpy(), np.arange(3.0))
    assert x.__array_namespace__() is tc
    with pytest.raises(ValueError, match="unsupported Array API version"):
        x.__array_namespace__(api_version="2021.01")


def test_default_device_is_cached_and_settable() -> None:
    try:
        tc.set_default_device("cpu:0")
        assert default_device() is tc.Device("cpu")
    finally:
        tc.set_default_device(None)
