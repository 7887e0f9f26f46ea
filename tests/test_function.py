"""tc.function: tracing into a graph, replay, trace caching, and what cannot be traced."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.nn import functional as F

rng = np.random.default_rng(4)


def test_a_traced_function_equals_eager_mode_and_traces_once(device: str) -> None:
    def f(x, y):
        return tc.tanh(x @ y) * 2.0 + tc.sum(x, axis=0)

    traced = tc.function(f)
    x = tc.asarray(rng.standard_normal((3, 3)), device=device)
    y = tc.asarray(rng.standard_normal((3, 3)), device=device)
    for _ in range(3):
        np.testing.assert_allclose(traced(x, y).numpy(), f(x, y).numpy(), rtol=1e-12)
    assert traced.trace_count == 1
    x2 = tc.asarray(rng.standard_normal((3, 3)), device=device)  # new values, same signature: replay
    np.testing.assert_allclose(traced(x2, y).numpy(), f(x2, y).numpy(), rtol=1e-12)
    assert traced.trace_count == 1
    assert [n.op_name for n in traced.traced_graph(x, y).nodes] == ["matmul", "tanh", "multiply", "sum", "add"]
    graph = traced.graph(x, y)  # as run: the elementwise chain is one fused node
    assert [n.op_name for n in graph.nodes] == ["matmul", "sum", "fused[tanh+multiply+add]"]
    assert all(str(n.device) == str(tc.Device(device)) for n in graph.nodes)


def test_new_signatures_retrace_and_frequent_retracing_warns() -> None:
    @tc.function
    def scale(x, k):
        return x * k

    x = tc.ones((2,))
    scale(x, 2.0)
    scale(x, 2.0)
    assert scale.trace_count == 1
    scale(tc.ones((3,)), 2.0)  # new shape
    scale(x, 3.0)  # new Python value
    assert scale.trace_count == 3
    np.testing.assert_array_equal(scale(x, 3.0).numpy(), [3.0, 3.0])
    with pytest.warns(UserWarning, match="traced 5 times"):
        for k in range(4, 6):
            scale(x, float(k))


def test_variables_are_captured_by_reference(device: str) -> None:
    v = tc.Variable([1.0, 2.0], device=device)

    @tc.function
    def bump(x):
        v.assign_add(x)
        return v * 1.0

    x = tc.ones((2,), device=device)
    bump(x)
    out = bump(x)
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])  # the graph's updates are seen outside
    np.testing.assert_array_equal(out.numpy(), [3.0, 4.0])
    v.assign(tc.zeros((2,), device=device))  # and outside assignments inside
    np.testing.assert_array_equal(bump(x).numpy(), [1.0, 1.0])


def _mlp(device: str):
    tc.random.seed(0)
    model = tc.nn.Sequential(tc.nn.Linear(8, 16, device=device), tc.nn.ReLU(), tc.nn.Linear(16, 3, device=device))
    return model, tc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_a_traced_training_step_matches_eager_after_100_steps(device: str) -> None:
    x = tc.asarray(rng.standard_normal((32, 8)).astype(np.float32), device=device)
    y = tc.asarray(rng.integers(0, 3, 32), device=device)

    def make_step(model, opt):
        def step(x, y):
            with tc.GradientTape() as tape:
                loss = F.cross_entropy(model(x), y)
            opt.step(tape.gradient(loss, model.parameters()))
            return loss
        return step

    eager_model, eager_opt = _mlp(device)
    traced_model, traced_opt = _mlp(device)
    eager_step = make_step(eager_model, eager_opt)
    traced_step = tc.function(make_step(traced_model, traced_opt))
    for _ in range(100):
        eager_loss = eager_step(x, y)
        traced_loss = traced_step(x, y)
    assert traced_step.trace_count == 1
    np.testing.assert_allclose(traced_loss.numpy(), eager_loss.numpy(), rtol=1e-5)
    for pe, pt in zip(eager_model.parameters(), traced_model.parameters()):
        np.testing.assert_allclose(pt.numpy(), pe.numpy(), rtol=1e-5, atol=1e-6)


def test_reading_a_value_while_tracing_names_the_line() -> None:
    @tc.function
    def branchy(x):
        if tc.sum(x) > 0:  # a value-dependent branch
            return x
        return -x

    with pytest.raises(tc.TraceError, match=r"value is read while tracing.*test_function.py:\d+.*if tc.sum\(x\) > 0"):
        branchy(tc.ones((2,)))


def test_returning_a_non_tensor_is_an_error() -> None:
    @tc.function
    def returns_float(x):
        return 3.5

    with pytest.raises(TypeError, match=r"returned a float \(3.5\); a traced function returns tensors"):
        returns_float(tc.ones((2,)))


def test_gradients_flow_through_a_traced_function_under_an_outer_tape(device: str) -> None:
    traced = tc.function(lambda x: tc.sum(tc.sin(x) * x))
    x = tc.asarray(np.array([0.5, 1.0]), device=device)
    traced(x)  # traced now; the calls below replay
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = traced(x)
    xv = np.array([0.5, 1.0])
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), np.cos(xv) * xv + np.sin(xv), rtol=1e-12)
