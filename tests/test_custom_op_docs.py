"""docs/custom_ops.md stays true: its examples run, on every device, and the errors a custom
kernel's author meets can be caught by the names ``tc`` exports (issue 12, defect 6)."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
from collections.abc import Iterator

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import errors
from tensorcore.ops import registry

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "custom_ops.md"


@contextlib.contextmanager
def _ops_defined_here() -> Iterator[None]:
    """Remove the ops (and their kernels) defined inside the block from the global op table
    afterwards, so the docs' ``softplus`` does not leak into other tests (test_docs.py checks
    the op table against docs/backends.md)."""
    before = set(registry.OPS)
    try:
        yield
    finally:
        for name in set(registry.OPS) - before:
            del registry.OPS[name]
            for kernels in registry._registered.values():
                kernels.pop(name, None)


@pytest.fixture(scope="module")
def docs() -> Iterator[dict]:
    """Every Python block of docs/custom_ops.md run in order in one namespace (later blocks
    use the names of earlier ones), as a reader pasting them into a session would; the
    namespace, with what the examples printed under ``"printed"``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 3, "custom_ops.md lost its examples"
    namespace: dict = {}
    printed = io.StringIO()
    with _ops_defined_here():
        with contextlib.redirect_stdout(printed):
            for code in blocks:
                exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
        namespace["printed"] = printed.getvalue()
        yield namespace


def test_the_documented_example_prints_softplus_gradient(docs: dict) -> None:
    printed = re.search(r"tensor\(\[(.*?)\]", docs["printed"])  # print(tape.gradient(y, x)): sigmoid(x)
    values = [float(v) for v in printed.group(1).split(",")]
    np.testing.assert_allclose(values, 1 / (1 + np.exp(-np.array([0.0, 1.0, 2.0]))), rtol=1e-6)


def test_documented_custom_op_and_kernel_run_on_every_device(docs: dict, device: str) -> None:
    """The kernel is written as the docs say (``fn(dev, x)`` on opencl): it runs on the device,
    natively (no fallback), and matches NumPy with its gradient."""
    softplus = docs["softplus"]
    x_np = np.array([-3.0, -0.5, 0.0, 1.0, 2.0, 30.0], np.float32)
    x = tc.asarray(x_np, device=device)
    tc.reset_placement_stats()
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = softplus(x)
        total = tc.sum(y)
    assert y.device == tc.Device(device)
    np.testing.assert_allclose(y.numpy(), np.logaddexp(0, x_np), rtol=1e-6)
    assert tc.placement_stats()["fallbacks"] == {}  # the documented kernel ran (opencl), or NumPy (cpu)
    np.testing.assert_allclose(tape.gradient(total, x).numpy(), 1 / (1 + np.exp(-x_np)), rtol=1e-5)
    # A view the kernel declines (strided) falls back under soft placement, warned and counted.
    strided = tc.asarray(np.arange(8.0, dtype=np.float32), device=device)[::2]
    np.testing.assert_allclose(softplus(strided).numpy(), np.logaddexp(0, np.arange(0.0, 8.0, 2.0)), rtol=1e-6)


def test_documented_custom_gradient_clips(docs: dict, device: str) -> None:
    x = tc.asarray(np.array([1.0, 2.0], np.float32), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = tc.sum(docs["clip_gradient"](x) * 10.0)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [1.0, 1.0])  # 10 clipped to 1


def test_error_types_a_user_may_catch_are_exported() -> None:
    for name in ("OpError", "PlacementError", "DeviceUnavailableError", "OutOfMemoryError", "GradientError",
                 "KernelBuildError", "KernelUnsupported", "CollectiveError", "SerializationError"):
        assert getattr(tc, name) is getattr(errors, name), name


def test_a_kernel_that_fails_to_build_raises_kernel_build_error_on_every_device(device: str) -> None:
    """A build error reaches the caller as ``tc.KernelBuildError`` (it was an ``OpError``
    wrapping an error type ``tc`` did not export): on opencl a real compile failure; on cpu a
    kernel that builds code (a JIT) and fails, the same way."""
    backend = tc.Device(device).type

    def broken(*args: object) -> object:
        if backend == "opencl":
            dev = args[0]
            dev.generated_kernel("broken.cl", "__kernel void broken(__global float *x) { x[0] = nope; }", "broken")
        raise errors.KernelBuildError("broken.cl: kernel 'broken' failed to build on cpu: 'nope' undeclared")

    with _ops_defined_here():
        op = tc.custom_op("test_docs_broken_build", kernels={backend: broken})(lambda x: x)
        with pytest.raises(tc.KernelBuildError, match="broken"):
            op(tc.ones((2,), device=device))
        assert tc.placement_stats()["fallbacks"] == {}
