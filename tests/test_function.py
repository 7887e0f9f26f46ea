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


# --- Regressions: graph-mode bugs found by comparing every op test with eager mode -------------


@tc.custom_op("test_function_twice_on_cpu")  # a NumPy kernel only: other devices fall back to cpu
def _twice_on_cpu(x: np.ndarray) -> np.ndarray:
    return x * 2


def _op_names(graph) -> list[str]:
    return [n.op_name for n in graph.nodes]


def test_a_result_a_cpu_fallback_computes_is_returned_on_the_device_eager_mode_uses(device: str) -> None:
    # The placer runs the node on cpu; eager mode copies a fallback's result back to the device
    # asked for, so the graph must return it there too (it returned it on cpu).
    def f(x):
        return _twice_on_cpu(x), _twice_on_cpu(x) + 1.0  # returned as it is, and read on the device

    x = tc.asarray(np.arange(3.0), device=device)
    traced = tc.function(f)
    for _ in range(2):
        for got, want in zip(traced(x), f(x)):
            assert got.device == want.device == tc.Device(device)
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_adding_zero_stays_where_it_turns_negative_zero_positive(device: str) -> None:
    # -0.0 + 0.0 is +0.0, so ``x + 0.0`` is not ``x``; ``x - 0.0`` is, and is still removed.
    from tensorcore.graph import passes

    def f(x):
        return 1.0 / (x + 0.0), 1.0 / (0.0 + x), 1.0 / (x - 0.0)

    x = tc.asarray(np.array([-0.0, 2.0]), device=device)
    traced = tc.function(f)
    for got, want in zip(traced(x), ([np.inf, 0.5], [np.inf, 0.5], [-np.inf, 0.5])):
        np.testing.assert_array_equal(got.numpy(), want)
    graph = traced.traced_graph(x).copy()
    passes.simplify(graph)
    assert _op_names(graph).count("add") == 2 and "subtract" not in _op_names(graph)


def test_common_subexpressions_tell_zeros_of_different_signs_apart(device: str) -> None:
    # 0.0 == -0.0 in Python, but x * 0.0 and x * -0.0 differ in the sign of zero
    def f(x):
        return 1.0 / (x * 0.0), 1.0 / (x * -0.0)

    x = tc.asarray(np.array([-1.0, 2.0]), device=device)
    a, b = tc.function(f)(x)
    np.testing.assert_array_equal(a.numpy(), [-np.inf, np.inf])
    np.testing.assert_array_equal(b.numpy(), [np.inf, -np.inf])


def test_a_tensor_made_inside_the_function_is_new_in_each_call(device: str) -> None:
    # tc.zeros inside the function was one constant of the graph: the first call's write stayed
    def one_hot(i):
        out = tc.zeros((4,), device=i.device)
        out[i] = 1.0
        return out

    traced = tc.function(one_hot)
    first = traced(tc.asarray([0], device=device))
    second = traced(tc.asarray([2], device=device))
    assert traced.trace_count == 1
    np.testing.assert_array_equal(second.numpy(), [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(first.numpy(), [1.0, 0.0, 0.0, 0.0])  # its own tensor, unchanged


def test_a_returned_constant_is_a_new_tensor_in_each_call(device: str) -> None:
    # the folded constant was returned itself: a caller's write changed every later result
    traced = tc.function(lambda x: (x * 2.0, tc.arange(3, device=x.device) * 2))
    x = tc.asarray(np.ones(3), device=device)
    first = traced(x)[1]
    first[0] = 100
    np.testing.assert_array_equal(traced(x)[1].numpy(), [0, 2, 4])
    assert _op_names(traced.graph(x)).count("astype") == 1  # one copy, of the folded result


def test_a_tensor_made_inside_and_only_read_needs_no_copy(device: str) -> None:
    traced = tc.function(lambda x: x * tc.asarray(np.array([1.0, 2.0, 3.0]), device=x.device))
    x = tc.asarray(np.ones(3), device=device)
    assert _op_names(traced.traced_graph(x)) == ["multiply"]
    np.testing.assert_array_equal(traced(x).numpy(), [1.0, 2.0, 3.0])


def test_writing_into_an_argument_bumps_its_version_so_a_tape_refuses_a_stale_gradient(device: str) -> None:
    def f(x):
        x[0] = 1.0
        return x * 2.0

    traced = tc.function(f)
    traced(tc.zeros(3, dtype=tc.float64, device=device))  # traced: the call below replays
    x = tc.ones(3, dtype=tc.float64, device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = tc.sum(x * x)
    version = x._version
    traced(x)
    assert x._version == version + 1  # as eager mode: one update, one version
    with pytest.raises(tc.GradientError):
        tape.gradient(y, x)


def test_a_shape_that_depends_on_the_data_is_not_fixed_by_the_trace(device: str) -> None:
    # the masked chain was fused for the traced size: a replay with another count of positive
    # elements failed (cpu) or computed the wrong elements (opencl)
    def f(a):
        return tc.exp(a[a > 0] * 2.0) + 1.0

    traced = tc.function(f)
    for values in ([1.0, -1.0, 2.0, 3.0], [1.0, -1.0, -2.0, 3.0], [1.0, 1.0, 2.0, 3.0]):
        x = tc.asarray(np.array(values), device=device)
        np.testing.assert_array_equal(traced(x).numpy(), f(x).numpy())
    assert traced.trace_count == 1
    graph = traced.graph(x)
    assert graph.specs[graph.outputs].shape == (None,)  # known only when it runs


def test_a_tensor_made_inside_is_copied_through_the_host_on_a_device_without_astype(
        device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # the copy of a tensor made while tracing needs no kernel: strict placement accepts it
    from tensorcore.ops.registry import OPS

    if tc.Device(device).type == "cpu":
        pytest.skip("cpu always has its astype kernel (the NumPy reference)")
    monkeypatch.delitem(OPS["astype"].kernels, tc.Device(device))

    def one_hot(i):
        out = tc.zeros((3,), device=i.device)
        out[i] = 1.0
        return out

    traced = tc.function(one_hot)
    with tc.placement_policy("strict"):
        traced(tc.asarray([0], device=device))
        second = traced(tc.asarray([2], device=device))
    assert second.device == tc.Device(device)
    np.testing.assert_array_equal(second.numpy(), [0.0, 0.0, 1.0])
    assert "astype" not in _op_names(traced.graph(tc.asarray([2], device=device)))


def test_one_tensor_in_two_places_does_not_stand_for_two(device: str) -> None:
    # f(x, x) traces one input for both places; f(x, z) must not run that graph (it computed
    # x - x), and f(x, x) again must not run the graph of two inputs with one of them unread
    f = tc.function(lambda a, b: a - b)
    x = tc.asarray(np.full(3, 2.0, np.float32), device=device)
    z = tc.asarray(np.ones(3, np.float32), device=device)
    np.testing.assert_array_equal(f(x, x).numpy(), np.zeros(3, np.float32))
    np.testing.assert_array_equal(f(x, z).numpy(), np.ones(3, np.float32))
    np.testing.assert_array_equal(f(z, x).numpy(), -np.ones(3, np.float32))
    np.testing.assert_array_equal(f(z, z).numpy(), np.zeros(3, np.float32))
    assert f.trace_count == 2  # same-in-both-places and two tensors: one graph each


def test_a_gradient_through_a_variable_written_in_place_is_refused_while_tracing(device: str) -> None:
    # eager mode refuses it (the tape recorded w before the write); tracing records the write
    # without running it, and computed the gradient from the written value instead
    w = tc.Variable(np.ones(3, np.float32), device=device)

    def step(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            loss = tc.sum(w * x)
        w.assign_sub(x)  # written after the tape recorded it
        return tape.gradient(loss, [w])[0]

    x = tc.asarray(np.arange(3, dtype=np.float32), device=device)
    with pytest.raises(tc.GradientError, match="written in place after the op was recorded"):
        step(x)
    w.assign(np.ones(3, np.float32))
    with pytest.raises(tc.GradientError, match="written in place after the op was recorded"):
        tc.function(step)(x)
