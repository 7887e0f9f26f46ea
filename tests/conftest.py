"""Shared fixtures: every op test runs on every available device (the device matrix).

The matrix is ``tc.devices()``: a backend that is installed and finds a device joins it with
no change to the tests. ``TENSORCORE_TEST_DEVICES=cpu,opencl:0`` narrows it.
"""

from __future__ import annotations

import os

import pytest

import tensorcore as tc
from tensorcore import placement


def _device_matrix() -> list[str]:
    wanted = os.environ.get("TENSORCORE_TEST_DEVICES")
    available = [str(info.device) for info in tc.devices()]
    if not wanted:
        return available
    return [str(tc.Device(d)) for d in wanted.split(",") if str(tc.Device(d)) in available]


DEVICES = _device_matrix()


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: plain pytest has no such hook
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``pytest -n auto`` (README's test command): one per core, at most four.

    Most of the suite waits on one core at a time (PoCL's compiler, Python), so two workers on
    CI's two cores cut its time by a third (docs/performance.md). The cap is a guess, not a
    measurement: each worker's PoCL and BLAS thread pools are as wide as the machine."""
    return max(1, min(4, os.cpu_count() or 1))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--fuzz-examples N``: examples per op and device for the differential fuzz tests
    (tests/test_fuzz_*.py, tests/fuzz/); their default is a small fixed budget for CI."""
    parser.addoption("--fuzz-examples", type=int, default=None, metavar="N",
                     help="hypothesis examples per op and device in tests/test_fuzz_*.py (default: a small budget)")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    """Each available device in turn, as a string like ``'cpu:0'``."""
    return request.param


@pytest.fixture(autouse=True)
def _clean_runtime_state():
    """Each test starts with soft placement, no device scope and fresh placement stats."""
    policy = placement.policy()
    placement.reset_placement_stats()
    yield
    placement.set_policy(policy)
    placement.reset_placement_stats()


# Every test's queued device work is finished before anything changes the environment.
#
# Why: PoCL compiles a kernel for each new work-group size in its own worker thread and links
# it by spawning ``ld`` (vfork + exec, reading the live ``environ``). Linux's execve fails with
# EFAULT, and PoCL aborts the process, if another thread adds or removes an environment
# variable meanwhile. pytest removes ``PYTEST_CURRENT_TEST`` after every test, and
# ``monkeypatch`` undoes its ``setenv`` at teardown, before autouse fixtures finish. CI's
# fresh kernel cache made this race crash the suite once. So the queues are drained after the
# test's body and again after its teardown. docs/backends.md describes the hazard for users.


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Drain every started device's queue after the test's body (see above)."""
    try:
        return (yield)
    finally:
        tc.synchronize()


@pytest.fixture(autouse=True)
def _queues_drained_after_teardown():
    """Drain the queues again once the test's fixtures are torn down (see above)."""
    yield
    tc.synchronize()


PLUGIN_DIR = os.path.join(os.path.dirname(__file__), "plugin")


@pytest.fixture
def opencl_launches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the kernels launched on ``opencl:0`` while the test runs, in order (the
    test clears the list where it starts counting); skips the test without OpenCL."""
    from tensorcore import registry

    if "opencl:0" not in DEVICES:
        pytest.skip("no opencl:0 device")
    dev = registry.get_backend("opencl").device(0)
    launches: list[str] = []
    launch = dev.launch
    monkeypatch.setattr(dev, "launch", lambda kernel, *args: (launches.append(kernel.function_name), launch(kernel, *args))[1])
    return launches


@pytest.fixture(scope="session")
def sim_backend():
    """Install the out-of-tree ``sim`` test backend (and a broken one) via entry points."""
    import importlib
    import sys

    from tensorcore import registry

    sys.path.insert(0, PLUGIN_DIR)
    importlib.invalidate_caches()
    registry.rescan()
    yield registry.get_backend("sim")
    sys.path.remove(PLUGIN_DIR)
    importlib.invalidate_caches()
    registry.rescan()


@pytest.fixture(autouse=True, scope="session")
def _shape_and_dtype_rules_agree_with_kernels():
    """Throughout the suite, every kernel call (every device) also checks its op's ``infer``
    rule: the graph layer relies on these rules, and dispatch only calls them when a kernel
    fails. So a device kernel must produce exactly the shapes and dtypes the cpu does."""
    import numpy as np

    from tensorcore.ops.registry import OPS, Spec

    def spec(a: object) -> object:
        return Spec(tuple(np.shape(a) if isinstance(a, np.generic) else a.shape), np.dtype(a.dtype)) if hasattr(a, "dtype") else a

    def checked(op, kernel):
        def run(*args, **attrs):
            out = kernel(*args, **attrs)
            if op.infer is None or out is None:
                return out
            expected = op.infer(*(spec(a) for a in args), **attrs)
            outs = out if op.n_outputs > 1 else (out,)
            rules = expected if op.n_outputs > 1 else (expected,)
            for k, (o, rule) in enumerate(zip(outs, rules)):
                shape, dtype = tuple(o.shape), np.dtype(o.dtype)
                assert rule.dtype == dtype, f"{op.name} output {k}: rule says {rule.dtype}, kernel gave {dtype}"
                if rule.shape is not None:
                    assert len(rule.shape) == len(shape) and all(
                        r is None or r == n for r, n in zip(rule.shape, shape)
                    ), f"{op.name} output {k}: rule says shape {rule.shape}, kernel gave {shape}"
            return out
        return run

    originals = {(op, dev): kernel for op in OPS.values() for dev, kernel in op.kernels.items()}
    for (op, dev), kernel in originals.items():
        op.kernels[dev] = checked(op, kernel)
    yield
    for (op, dev), kernel in originals.items():
        op.kernels[dev] = kernel
