"""Threads: what one thread does must not leak into another (docs/architecture.md, "Threads").

- A graph tracer belongs to the thread that traces: another thread's eager ops run eagerly,
  its value reads work, and two threads can trace two functions at once.
- A compiled OpenCL kernel is seen by other threads only once it is complete (its argument
  types declared), so first uses of a kernel from two threads do not race.
- A device error found by a kernel is raised in the thread that launched the op, at that
  thread's next read, and in no other thread.

Threads are ordered with Events, never with sleeps; each test joins its threads with a
timeout and checks that they finished (the suite drains the device queues after each test).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import numpy as np
import pytest
from tensorcore.backends import cuda as cuda_backend

import tensorcore as tc
from tensorcore import dispatch, registry
from tensorcore.graph.trace import TraceError

from support import run_threads

TIMEOUT = 30.0  # seconds: only reached when something is broken


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


# --- OpenCL: a cached kernel is complete before another thread sees it --------------------------


def _opencl(device: str) -> tuple:
    if not device.startswith("opencl"):
        pytest.skip("an OpenCL kernel cache")
    backend = registry.get_backend("opencl")
    return backend, backend.device(tc.Device(device).index)


_GENERATED = """
__kernel void affine(__global float* out, __global const float* a, long n, float scale, float shift) {
    const long i = get_global_id(0);
    if (i < n) out[i] = a[i] * scale + shift;
}
"""


@pytest.mark.parametrize("path", ["kernel", "generated_kernel"])
def test_another_thread_gets_a_new_kernel_only_with_its_argument_types_declared(
        path: str, device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend, dev = _opencl(device)
    monkeypatch.setattr(dev, "_kernels", {})  # a cold cache for this test; the real one is restored after
    a = backend.from_numpy(np.arange(8, dtype=np.float32), dev.index)
    if path == "kernel":
        from tensorcore.backends.opencl_ops.elementwise_launch import CTYPES, _kind_defines

        f32 = np.dtype(np.float32)
        defines = (("T", CTYPES[f32]),) + _kind_defines("T", f32)  # the unary program's, as the launchers build it
        get = lambda: dev.kernel("elementwise.cl", "clip_t", defines)  # noqa: E731
        args, expected = (0, 2.0, 5.0, 8, 8), np.clip(np.arange(8), 2, 5)  # ao, lo, hi, n, chunk: Python scalars
        size = (1,)
    else:
        get = lambda: dev.generated_kernel("test affine", _GENERATED, "affine")  # noqa: E731
        args, expected = (8, 2.0, 1.0), np.arange(8) * 2.0 + 1.0  # n, scale, shift
        size = (8,)

    declaring, b_done = threading.Event(), threading.Event()
    declare = dev._declare_scalar_types
    calls: list[str] = []

    def slow_declare(kernel: object) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:  # thread A, between building the kernel and declaring its types
            declaring.set()
            b_done.wait(0.3)  # thread B's lookup happens now (a fixed build waits for A instead)
        declare(kernel)

    monkeypatch.setattr(dev, "_declare_scalar_types", slow_declare)
    out: dict[str, np.ndarray] = {}

    def thread_a() -> None:
        get()

    def thread_b() -> None:
        assert declaring.wait(TIMEOUT)
        try:
            kernel = get()
            result = dev.empty((8,), np.float32)
            dev.launch(kernel, size, None, result.buf, a.buf, *args)  # needs the declared types
            out["b"] = backend.to_numpy(result)
        finally:
            b_done.set()

    run_threads(thread_a, thread_b)
    np.testing.assert_array_equal(out["b"], expected)
    assert len(calls) == 1  # built and declared once, not once per thread


def _stress_ops(device: str, seed: int) -> list[tuple[str, Callable[[], tuple[object, np.ndarray]]]]:
    """About 250 small ops of many shapes and kernels, each with its NumPy answer (two dtypes:
    each new program costs PoCL ~0.2 s to load, while each kernel of a program is a first use)."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in range(50):
        shape = (1 + k % 5, 2 + k % 7)
        dtype = (np.float32, np.int32)[k % 2]
        a = rng.standard_normal(shape) * 4
        b = rng.standard_normal(shape[1:]) * 4
        if dtype == np.int32:
            a, b = np.round(a), np.round(b)
        a, b = a.astype(dtype), b.astype(dtype)
        ta, tb = tc.asarray(a, device=device), tc.asarray(b, device=device)
        cases += [
            ("add", lambda ta=ta, tb=tb: (ta + tb), a + b),
            ("multiply", lambda ta=ta: (ta * 3), a * dtype(3)),
            ("abs", lambda ta=ta: tc.abs(ta), np.abs(a)),
            ("maximum", lambda ta=ta, tb=tb: tc.maximum(ta, tb), np.maximum(a, b)),
            ("sum", lambda ta=ta: tc.sum(ta, axis=1), np.sum(a, axis=1)),
        ]
        if dtype == np.float32:
            cases += [
                ("exp", lambda ta=ta: tc.exp(ta * 0.1), np.exp(a * dtype(0.1))),
                ("matmul", lambda ta=ta: ta @ ta.mT, a @ a.T),
                ("transpose copy", lambda ta=ta: tc.sqrt(tc.abs(ta.mT)), np.sqrt(np.abs(a.T))),
            ]
    return [(name, lambda fn=fn, exp=exp: (fn(), exp)) for name, fn, exp in cases]


def test_two_threads_first_use_many_kernels_at_once(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorcore.backends.opencl_ops import elementwise_launch

    _, dev = _opencl(device)
    monkeypatch.setattr(dev, "_kernels", {})  # cold caches; the real ones come back after the test
    monkeypatch.setattr(elementwise_launch, "_kernels", {})
    start = threading.Barrier(2, timeout=TIMEOUT)
    results: dict[int, list] = {0: [], 1: []}

    def worker(k: int) -> Callable[[], None]:
        cases = _stress_ops(device, seed=k)

        def run() -> None:
            start.wait()
            for name, case in cases:
                tensor, expected = case()
                results[k].append((name, tensor, expected))
            for name, tensor, expected in results[k]:
                np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-5, atol=1e-5, err_msg=name)
        return run

    run_threads(worker(0), worker(1))
    assert len(results[0]) == len(results[1]) >= 200


# --- device errors belong to the thread that launched the op -----------------------------------


def test_a_device_error_is_raised_in_the_thread_that_launched_the_op(device: str) -> None:
    x = _f32(np.arange(12).reshape(4, 3), device)
    bad = tc.asarray(np.array([0, 7]), device=device)  # 7 is out of range for 4 rows
    good = tc.asarray(np.array([3, 1]), device=device)
    launched, b_done = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def thread_a() -> None:
        try:
            # cpu names take at the call; a device names the getitem kernel that take runs, at the next
            # read (tests/test_honest_errors.py keeps that difference as a known gap)
            with pytest.raises(tc.OpError, match=r"(take|getitem): .*out of bounds for axis 0 with size 4") as caught:
                y = tc.take(x, bad, axis=0)
                launched.set()
                assert b_done.wait(TIMEOUT)
                y.numpy()
            out["a"] = str(caught.value)
            out["a_after"] = (x + 1.0).numpy()  # reported once: A's later reads are fine
        finally:
            launched.set()

    def thread_b() -> None:
        assert launched.wait(TIMEOUT)  # A's bad take is queued (or has raised, on cpu)
        try:
            out["b"] = tc.take(x, good, axis=0).numpy()
            tc.synchronize()  # reports this thread's errors only: there are none
            tc.synchronize(device)
        finally:
            b_done.set()

    run_threads(thread_a, thread_b)
    np.testing.assert_array_equal(out["b"], [[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]])
    np.testing.assert_array_equal(out["a_after"], np.arange(12).reshape(4, 3) + 1.0)
    tc.synchronize()  # nothing left over for this thread either


def test_synchronize_reports_the_calling_threads_device_error(device: str) -> None:
    labels = tc.asarray(np.array([0, 5]), device=device)  # 5 is out of range for 3 classes
    logits = _f32(np.zeros((2, 3)), device)
    out: dict[str, str] = {}

    def thread_a() -> None:
        with pytest.raises(tc.OpError, match=r"cross_entropy: (label 5|a label) is out of range for 3 classes") as caught:
            tc.nn.functional.cross_entropy(logits, labels)
            tc.synchronize()
        out["a"] = str(caught.value)

    run_threads(thread_a)
    assert "cross_entropy" in out["a"]
    tc.synchronize()  # the main thread has no error of its own


class _HostArray(np.ndarray):
    """NumPy memory with the one CuPy method the error flags use."""

    def get(self, stream: object = None) -> np.ndarray:
        return np.asarray(self)


class _HostCUDADevice(cuda_backend.CUDADevice):
    """A ``CUDADevice`` on NumPy memory (no driver needed): enough to run its error flags."""

    def __init__(self) -> None:  # no super().__init__: that would talk to a driver
        self.stream, self.index = None, 0
        self._init_shared_state()

    def empty(self, shape: tuple[int, ...], dtype: object) -> _HostArray:
        return np.empty(shape, dtype).view(_HostArray)

    def activate(self) -> contextlib.nullcontext:
        return contextlib.nullcontext(self)


def test_cuda_error_flags_are_per_thread_too() -> None:
    dev = _HostCUDADevice()
    flagged, b_done = threading.Event(), threading.Event()
    out: dict[str, object] = {}

    def thread_a() -> None:
        try:
            buf, code = dev.error_flag("embedding: an index is out of range for a weight with 4 rows")
            buf[0] = code  # what the kernel does on a bad index
            out["a_buf"] = buf
        finally:
            flagged.set()
        assert b_done.wait(TIMEOUT)
        with pytest.raises(tc.OpError, match=r"embedding: an index is out of range .* this thread"):
            dev.finished()
        dev.finished()  # reported once

    def thread_b() -> None:
        assert flagged.wait(TIMEOUT)
        try:
            buf, _ = dev.error_flag("cross_entropy: a label is out of range for 3 classes")
            out["b_buf"] = buf
            dev.finished()  # A's error is not B's: nothing is raised here
        finally:
            b_done.set()

    run_threads(thread_a, thread_b)
    assert out["a_buf"] is not out["b_buf"]
    dev.finished()  # nor in the main thread


def test_a_tape_records_its_op_while_another_threads_tape_closes(device: str) -> None:
    """The tapes of every thread share one list. Thread B's tape comes first in it and closes
    just while thread A's op walks the list (B's tape is asked, from A, which thread it
    belongs to: the moment B removes it). A's own tape must still record the op: walking the
    list itself skipped it, and A's gradient came back None (two replicas training in one
    process lost their first layer's gradients that way)."""
    asked, removed, opened = threading.Event(), threading.Event(), threading.Event()

    class ClosesWhileAsked(tc.GradientTape):
        @property
        def _thread(self) -> int | None:
            if self._owner is not None and threading.get_ident() != self._owner and not asked.is_set():
                asked.set()
                removed.wait(TIMEOUT)  # B leaves its block meanwhile
            return self._owner

        @_thread.setter
        def _thread(self, value: int | None) -> None:
            self._owner = value

    def other_thread() -> None:
        with ClosesWhileAsked():
            opened.set()
            asked.wait(TIMEOUT)
        removed.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    assert opened.wait(TIMEOUT)
    x = tc.asarray(np.array([1.0, 2.0], np.float32), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = tc.sum(x * 3.0)
    thread.join(TIMEOUT)
    assert not thread.is_alive() and asked.is_set()
    (g,) = tape.gradient(y, [x])
    assert g is not None
    np.testing.assert_array_equal(g.numpy(), [3.0, 3.0])
