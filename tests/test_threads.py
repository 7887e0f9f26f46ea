"""Threads: what one thread does must not leak into another (docs/architecture.md, "Threads").

- A graph tracer belongs to the thread that traces: another thread's eager ops run eagerly,
  its value reads work, and two threads can trace two functions at once.

Threads are ordered with Events, never with sleeps; each test joins its threads with a
timeout and checks that they finished (the suite drains the device queues after each test).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import dispatch
from tensorcore.graph.trace import TraceError

TIMEOUT = 30.0  # seconds: only reached when something is broken


def run_threads(*bodies: Callable[[], None]) -> None:
    """Run each body in its own thread, wait for all of them, re-raise the first error."""
    errors: list[BaseException] = []

    def catching(body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)
        return run

    threads = [threading.Thread(target=catching(b), name=f"test-threads-{i}", daemon=True) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]


def _f32(values: object, device: str) -> tc.Tensor:
    return tc.asarray(np.asarray(values, np.float32), device=device)


def _traced_ops(fn: tc.Function, *args: object) -> list[str]:
    return [n.op_name for n in fn.traced_graph(*args).nodes]


# --- graph tracers are per thread ------------------------------------------------------------


def test_eager_ops_of_another_thread_run_eagerly_while_a_function_traces(device: str) -> None:
    v = tc.Variable(np.float32(0.0), device=device)
    tracing, b_finished = threading.Event(), threading.Event()

    @tc.function
    def double(x: tc.Tensor) -> tc.Tensor:
        tracing.set()  # thread A is inside its trace now: thread B runs its eager code
        assert b_finished.wait(TIMEOUT)
        return x * 2.0

    @tc.function
    def plus_one(x: tc.Tensor) -> tc.Tensor:
        return x + 1.0

    x = _f32([1.0, 2.0], device)
    seen: dict[str, object] = {}

    def thread_a() -> None:
        seen["a"] = double(x).numpy()

    def thread_b() -> None:
        assert tracing.wait(TIMEOUT)
        try:
            v.assign_add(1.0)  # runs now, in this thread, and joins no graph
            seen["v"] = float(v.numpy())  # a value read is no TraceError here
            seen["u"] = tc.Variable(np.ones(2, np.float32), device=device).numpy()  # nor is a new Variable
            seen["r"] = tc.random.uniform((3,), device=device).numpy()
            seen["plus_one"] = plus_one(_f32([5.0], device)).numpy()  # a function of its own, traced here
        finally:
            b_finished.set()

    run_threads(thread_a, thread_b)
    assert seen["v"] == 1.0
    np.testing.assert_array_equal(seen["u"], [1.0, 1.0])
    assert seen["r"].shape == (3,)
    np.testing.assert_array_equal(seen["plus_one"], [6.0])
    assert plus_one.trace_count == 1
    np.testing.assert_array_equal(seen["a"], [2.0, 4.0])
    assert _traced_ops(double, x) == ["multiply"]  # nothing of thread B's
    for k in range(3):  # later calls run A's graph: B's update is not part of it
        np.testing.assert_array_equal(double(_f32([k, 1.0], device)).numpy(), [2.0 * k, 2.0])
    assert float(v.numpy()) == 1.0
    assert double.trace_count == 1
    assert not dispatch.tracers


def test_two_threads_trace_two_functions_at_once(device: str) -> None:
    a_inside, b_inside, a_done = threading.Event(), threading.Event(), threading.Event()

    @tc.function
    def f(x: tc.Tensor) -> tc.Tensor:
        y = x + 1.0
        a_inside.set()
        assert b_inside.wait(TIMEOUT)  # both threads trace now
        z = y * 2.0
        a_done.set()
        return z

    @tc.function
    def g(x: tc.Tensor) -> tc.Tensor:
        assert a_inside.wait(TIMEOUT)
        y = x - 3.0
        b_inside.set()
        assert a_done.wait(TIMEOUT)
        return y * 5.0

    x = _f32([1.0, 2.0, 3.0], device)
    out: dict[str, np.ndarray] = {}

    def thread_a() -> None:
        try:
            out["f"] = f(x).numpy()
        finally:
            a_inside.set()
            a_done.set()

    def thread_b() -> None:
        try:
            out["g"] = g(x).numpy()
        finally:
            b_inside.set()

    run_threads(thread_a, thread_b)
    np.testing.assert_array_equal(out["f"], [4.0, 6.0, 8.0])
    np.testing.assert_array_equal(out["g"], [-10.0, -5.0, 0.0])
    assert _traced_ops(f, x) == ["add", "multiply"]
    assert _traced_ops(g, x) == ["subtract", "multiply"]
    x2 = _f32([10.0, 20.0, 30.0], device)  # later calls run each graph on new values
    np.testing.assert_array_equal(f(x2).numpy(), [22.0, 42.0, 62.0])
    np.testing.assert_array_equal(g(x2).numpy(), [35.0, 85.0, 135.0])
    assert f.trace_count == g.trace_count == 1
    assert not dispatch.tracers


def test_untraced_in_one_thread_pauses_only_that_threads_tracing(device: str) -> None:
    a_inside, b_paused, a_finished = threading.Event(), threading.Event(), threading.Event()

    @tc.function
    def triple(x: tc.Tensor) -> tc.Tensor:
        a_inside.set()
        assert b_paused.wait(TIMEOUT)  # thread B is inside dispatch.untraced() now
        return x * 3.0

    x = _f32([1.0, 2.0], device)
    out: dict[str, object] = {}

    def thread_a() -> None:
        try:
            out["a"] = triple(x).numpy()
        finally:
            a_finished.set()

    def thread_b() -> None:
        assert a_inside.wait(TIMEOUT)
        with dispatch.untraced():
            b_paused.set()
            assert a_finished.wait(TIMEOUT)  # A finishes its trace while B is paused
            out["b"] = (x + 1.0).numpy()

    run_threads(thread_a, thread_b)
    np.testing.assert_array_equal(out["a"], [3.0, 6.0])
    np.testing.assert_array_equal(out["b"], [2.0, 3.0])
    assert _traced_ops(triple, x) == ["multiply"]
    np.testing.assert_array_equal(triple(_f32([5.0, 7.0], device)).numpy(), [15.0, 21.0])
    assert not dispatch.tracers  # B's untraced() gave back no tracer of A's


def test_a_value_read_in_the_tracing_thread_is_still_refused(device: str) -> None:
    @tc.function
    def reads(x: tc.Tensor) -> tc.Tensor:
        if float(tc.sum(x).numpy()) > 0:
            return x
        return -x

    with pytest.raises(TraceError, match="a tensor's value is read while tracing"):
        reads(_f32([1.0], device))
    assert not dispatch.tracers
