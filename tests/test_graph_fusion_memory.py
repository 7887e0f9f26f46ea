"""Elementwise fusion (one generated kernel per chain) and memory planning, on every device."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import placement, registry
from tensorcore.graph.function import compile_graph

rng = np.random.default_rng(5)
needs_opencl = pytest.mark.skipif("opencl:0" not in [str(i.device) for i in tc.devices()], reason="no opencl:0 device")


def chain(x, y):
    """Five elementwise ops: one fused kernel."""
    return tc.exp(tc.maximum(x * 0.5 + y, 0.0)) - 1.0


def tolerance(dtype) -> dict:
    return {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-13, "atol": 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_elementwise_chain_becomes_one_fused_node_equal_to_eager(device: str, dtype) -> None:
    x = tc.asarray(rng.standard_normal((33, 17)).astype(dtype), device=device)
    y = tc.asarray(rng.standard_normal((33, 17)).astype(dtype), device=device)
    traced = tc.function(chain)
    out = traced(x, y)
    if dtype == np.float64 and device.startswith("opencl") and not registry.get_backend("opencl").device(0).fp64:
        pytest.skip("opencl:0 has no float64")
    graph = traced.graph(x, y)
    assert [n.op_name for n in graph.nodes] == ["fused[multiply+add+maximum+exp+subtract]"]
    np.testing.assert_allclose(out.numpy(), chain(x, y).numpy(), **tolerance(dtype))
    assert out.dtype == dtype


def test_a_fused_chain_is_one_kernel_launch_on_opencl(opencl_launches) -> None:
    launches = opencl_launches
    x = tc.asarray(rng.standard_normal(1000).astype(np.float32), device="opencl:0")
    y = tc.asarray(rng.standard_normal(1000).astype(np.float32), device="opencl:0")
    traced = tc.function(chain)
    traced(x, y)  # traced (eagerly, op by op), then run
    launches.clear()
    out = traced(x, y)
    assert launches == ["fused"]  # five ops, one launch
    launches.clear()
    expected = chain(x, y)
    assert len(launches) == 5  # eager: one launch per op
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_fused_kernels_take_broadcast_strided_and_scalar_operands(device: str) -> None:
    def f(x, b):
        t = tc.matrix_transpose(x)  # a strided view
        return tc.tanh(t * 2.0 + b) * tc.nn.functional.sigmoid(t) - tc.square(b) / 3.0

    x = tc.asarray(rng.standard_normal((5, 7)).astype(np.float32), device=device)
    b = tc.asarray(rng.standard_normal(5).astype(np.float32), device=device)  # broadcast over rows
    traced = tc.function(f)
    out = traced(x, b)
    assert any(n.kind == "fused" for n in traced.graph(x, b).nodes)
    np.testing.assert_allclose(out.numpy(), f(x, b).numpy(), rtol=2e-6, atol=2e-6)


def test_fusion_keeps_values_read_outside_the_chain_and_int_ops_unfused(device: str) -> None:
    def f(x, k):
        a = tc.exp(x) * 2.0  # a is also returned: the chain cannot swallow it
        return a, a + 1.0, (k * 3 + 1) * 2  # integer ops are not fused

    x = tc.asarray(rng.standard_normal(6).astype(np.float32), device=device)
    k = tc.asarray(np.arange(6), device=device)
    traced = tc.function(f)
    for got, want in zip(traced(x, k), f(x, k)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        assert got.dtype == want.dtype
    names = [n.op_name for n in traced.graph(x, k).nodes]
    assert "fused[exp+multiply]" in names and "multiply" in names and "add" in names


def mlp_step(device: str):
    # Sigmoid, not ReLU: both become the forward GEMM's epilogue, but sigmoid's backward stays
    # an elementwise node (that can write into a dead input), where relu_backward becomes the
    # backward GEMM's epilogue too
    tc.random.seed(0)
    model = tc.nn.Sequential(tc.nn.Linear(64, 128, device=device), tc.nn.Sigmoid(),
                             tc.nn.Linear(128, 128, device=device), tc.nn.Sigmoid(), tc.nn.Linear(128, 10, device=device))
    opt = tc.optim.SGD(model.parameters(), lr=0.05)

    @tc.function
    def step(x, y):
        with tc.GradientTape() as tape:
            loss = tc.nn.functional.cross_entropy(model(x), y)
        opt.step(tape.gradient(loss, model.parameters()))
        return loss

    x = tc.asarray(rng.standard_normal((256, 64)).astype(np.float32), device=device)
    y = tc.asarray(rng.integers(0, 10, 256), device=device)
    return step, x, y


def test_memory_planning_lowers_the_peak_of_a_training_step(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorcore.graph import rewrite_sgd_gemm

    # The planner's own effect, on the step with its weight gradients: the rewrite that folds
    # them into the updates (on opencl) leaves less to plan, checked below.
    monkeypatch.setattr(rewrite_sgd_gemm, "weight_gradient_into_sgd", lambda graph, on_cpu=False: 0)
    step, x, y = mlp_step(device)
    step(x, y)
    plan = step._compiled_for((x, y), {}).executable.memory
    assert plan.peak_bytes < 0.7 * plan.unplanned_peak_bytes, plan.summary()
    if device.startswith("cpu"):  # sigmoid and sigmoid_backward write into their dead input
        assert plan.donations, "some nodes should write into a dead input"
    assert "less" in step.memory_report(x, y)
    monkeypatch.undo()
    fused, x, y = mlp_step(device)
    fused(x, y)
    fused_plan = fused._compiled_for((x, y), {}).executable.memory
    assert fused_plan.peak_bytes <= plan.peak_bytes  # no gradient stored: never more memory


@needs_opencl
def test_memory_planning_lowers_the_measured_peak_on_opencl() -> None:
    step, x, y = mlp_step("opencl:0")
    step(x, y)
    traced = step.traced_graph(x, y)
    dev = registry.get_backend("opencl").device(0)
    peaks = {}
    for planned in (False, True):
        executable = compile_graph(traced, strict=False, plan=planned).executable
        executable.run([x, y]).numpy()
        tc.synchronize("opencl:0")
        dev.peak = dev.pool.active_bytes  # measure this run's peak from here
        executable.run([x, y]).numpy()
        peaks[planned] = dev.peak - dev.pool.active_bytes
    assert peaks[True] < peaks[False], f"peak bytes above the resting level: planned {peaks[True]:,}, unplanned {peaks[False]:,}"


def test_a_dead_input_read_through_a_view_is_not_overwritten(device: str) -> None:
    def f(a, b):
        m = a @ b
        flat = tc.reshape(m, (-1,))  # may share m's buffer
        return tc.nn.functional.relu(m), flat * 1.5

    a = tc.asarray(rng.standard_normal((4, 4)), device=device)
    b = tc.asarray(rng.standard_normal((4, 4)), device=device)
    traced = tc.function(f)
    for _ in range(2):
        for got, want in zip(traced(a, b), f(a, b)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_graph_runs_are_counted_per_device(device: str) -> None:
    x = tc.asarray(np.ones(4), device=device)
    traced = tc.function(lambda x: tc.max(tc.exp(x)))  # two nodes (a sum would fuse with the exp)
    traced(x)
    tc.reset_placement_stats()
    traced(x)
    assert placement.placement_stats()["ops_per_device"] == {str(tc.Device(device)): 2}
