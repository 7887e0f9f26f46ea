"""GradientTape, Variable, custom_gradient and stop_gradient."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import check_grad

rng = np.random.default_rng(1)


def test_trainable_variables_are_watched_and_gradients_come_in_source_order(device: str) -> None:
    w = tc.Variable(rng.standard_normal((3, 2)), device=device)
    b = tc.Variable(rng.standard_normal((2,)), device=device)
    x = tc.asarray(rng.standard_normal((4, 3)), device=device)
    with tc.GradientTape() as tape:
        loss = tc.sum((x @ w + b) ** 2)
    gb, gw = tape.gradient(loss, [b, w])
    y = x.numpy() @ w.numpy() + b.numpy()
    np.testing.assert_allclose(gw.numpy(), x.numpy().T @ (2 * y), rtol=1e-12)
    np.testing.assert_allclose(gb.numpy(), (2 * y).sum(0), rtol=1e-12)
    assert tape.watched_variables() == (w, b)


def test_structure_of_sources_is_kept(device: str) -> None:
    x = tc.asarray([1.0, 2.0], device=device)
    with tc.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = tc.sum(x * x)
    assert isinstance(tape.gradient(y, x), tc.Tensor)
    assert isinstance(tape.gradient(y, [x]), list)
    assert isinstance(tape.gradient(y, (x,)), tuple)


def test_unwatched_source_raises_naming_it(device: str) -> None:
    x = tc.asarray([1.0, 2.0], device=device)
    with tc.GradientTape() as tape:
        y = tc.sum(x * x)
    with pytest.raises(tc.GradientError, match=r"source 0 \(Tensor float32\[2\]\) was not watched"):
        tape.gradient(y, [x])


def test_watch_accessed_variables_false_needs_explicit_watch(device: str) -> None:
    v = tc.Variable([1.0, 2.0], device=device)
    with tc.GradientTape(watch_accessed_variables=False) as tape:
        y = tc.sum(v * v)
    with pytest.raises(tc.GradientError, match="not watched"):
        tape.gradient(y, v)


def test_non_persistent_tape_gives_one_gradient_only(device: str) -> None:
    x = tc.asarray([3.0], device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [6.0])
    with pytest.raises(tc.GradientError, match="already called"):
        tape.gradient(y, x)


def test_persistent_tape_and_unconnected_gradients(device: str) -> None:
    x = tc.asarray([3.0], device=device)
    z = tc.asarray([5.0], device=device)
    with tc.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        y1, y2 = x * x, x * 4
    np.testing.assert_allclose(tape.gradient(y1, x).numpy(), [6.0])
    np.testing.assert_allclose(tape.gradient(y2, x).numpy(), [4.0])
    np.testing.assert_allclose(tape.gradient([y1, y2], x).numpy(), [10.0])
    assert tape.gradient(y1, z) is None
    np.testing.assert_array_equal(tape.gradient(y1, z, unconnected_gradients="zero").numpy(), [0.0])


def test_output_gradients_seed_the_backward_pass(device: str) -> None:
    x = tc.asarray([1.0, 2.0], device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = x * 3
    g = tape.gradient(y, x, output_gradients=tc.asarray([10.0, 100.0], device=device))
    np.testing.assert_allclose(g.numpy(), [30.0, 300.0])


def test_second_order_gradient_with_nested_tapes(device: str) -> None:
    x = tc.asarray([0.5, -1.5, 2.0], dtype=tc.float64, device=device)
    with tc.GradientTape() as outer:
        outer.watch(x)
        with tc.GradientTape() as inner:
            inner.watch(x)
            y = tc.sum(x**3 + tc.sin(x))
        dy = inner.gradient(y, x)
    d2y = outer.gradient(dy, x)
    xv = x.numpy()
    np.testing.assert_allclose(dy.numpy(), 3 * xv**2 + np.cos(xv), rtol=1e-12)
    np.testing.assert_allclose(d2y.numpy(), 6 * xv - np.sin(xv), rtol=1e-12)


def test_stop_gradient_and_stop_recording(device: str) -> None:
    x = tc.asarray([2.0], device=device)
    with tc.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * tc.stop_gradient(x)
        with tape.stop_recording():
            z = x * x
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [2.0])
    assert tape.gradient(z, x, unconnected_gradients="none") is None


def test_custom_gradient_replaces_the_recorded_ops(device: str) -> None:
    @tc.custom_gradient
    def clipped_identity(x):
        def grad(g):
            return tc.clip(g, min=-1.0, max=1.0)
        return x * 1.0, grad

    x = tc.asarray([1.0, 2.0], device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = clipped_identity(x) * 5.0
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [1.0, 1.0])


def test_custom_gradient_is_differentiable_again(device: str) -> None:
    @tc.custom_gradient
    def log1pexp(x):
        e = tc.exp(x)

        def grad(g):
            return g * (1 - 1 / (1 + tc.exp(x)))
        return tc.log(1 + e), grad

    check_grad(log1pexp, [rng.standard_normal((4,))], device)
    x = tc.asarray([0.3], dtype=tc.float64, device=device)
    with tc.GradientTape() as outer:
        outer.watch(x)
        with tc.GradientTape() as inner:
            inner.watch(x)
            y = log1pexp(x)
        dy = inner.gradient(y, x)
    s = 1 / (1 + np.exp(-0.3))
    np.testing.assert_allclose(outer.gradient(dy, x).numpy(), [s * (1 - s)], rtol=1e-12)


def test_variable_assign_in_place_and_errors_leave_it_unchanged(device: str) -> None:
    v = tc.Variable(np.zeros(3, np.float32), device=device, name="v")
    same = v
    v.assign(tc.asarray([1.0, 2.0, 3.0], device=device))
    v.assign_add(tc.ones((3,), device=device))
    v.assign_sub(tc.asarray([0.5, 0.5, 0.5], device=device))
    assert v is same and v.device == tc.Device(device)
    np.testing.assert_allclose(v.numpy(), [1.5, 2.5, 3.5])
    with pytest.raises(tc.OpError, match=r"assign: value has shape \(2,\), but variable 'v' has shape \(3,\)"):
        v.assign(tc.zeros((2,), device=device))
    with pytest.raises(tc.OpError, match="dtype float64.*float32"):
        v.assign_add(tc.zeros((3,), dtype=tc.float64, device=device))
    np.testing.assert_allclose(v.numpy(), [1.5, 2.5, 3.5])
    with pytest.raises(tc.OpError, match="trainable Variable must be floating point"):
        tc.Variable([1, 2])


def test_assigning_a_variable_before_gradient_is_detected(device: str) -> None:
    v = tc.Variable([1.0, 2.0], device=device, name="w")
    with tc.GradientTape() as tape:
        y = tc.sum(v * v)
    v.assign_add(tc.ones((2,), device=device))
    with pytest.raises(tc.GradientError, match=r"\(variable 'w'\) was written in place after the op was recorded"):
        tape.gradient(y, v)


def test_setitem_on_a_tensor_the_tape_depends_on_is_refused(device: str) -> None:
    x = tc.asarray([1.0, 2.0], device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(tc.GradientError, match="in-place assignment"):
            x[0] = 5.0
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])
    assert tape is not None


def test_variable_acts_as_a_tensor_in_every_op(device: str) -> None:
    v = tc.Variable(np.arange(6.0).reshape(2, 3), device=device)
    np.testing.assert_allclose(tc.sum(v, axis=1).numpy(), [3.0, 12.0])
    np.testing.assert_allclose((v.T @ v).numpy(), np.arange(6.0).reshape(2, 3).T @ np.arange(6.0).reshape(2, 3))
    assert isinstance(v[0], tc.Tensor) and not isinstance(v[0], tc.Variable)


@pytest.mark.parametrize("fn", [
    lambda x: x**2, lambda x: 2.0**x, lambda x: tc.atan2(x, 2.0), lambda x: tc.atan2(2.0, x),
    lambda x: tc.clip(x, min=0.1), lambda x: tc.mean(x * x), lambda x: tc.hypot(x, 3.0),
])
def test_float32_gradients_stay_float32_on_the_device(fn, device: str) -> None:
    x = tc.asarray(np.array([0.5, 1.5], np.float32), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = tc.sum(fn(x))
    g = tape.gradient(y, x)
    assert g.dtype == tc.float32 and g.device == tc.Device(device)


def test_gradient_of_an_unused_trainable_variable_is_none(device: str) -> None:
    w = tc.Variable([1.0], device=device)
    unused = tc.Variable([2.0], device=device)
    with tc.GradientTape() as tape:
        loss = tc.sum(w * 3.0)
    gw, gu = tape.gradient(loss, [w, unused])
    np.testing.assert_array_equal(gw.numpy(), [3.0])
    assert gu is None


def test_writing_a_recorded_tensor_after_the_tape_closed_is_caught(device: str) -> None:
    w = tc.asarray([1.0, 2.0], device=device)
    xx = tc.asarray([10.0, 20.0], device=device)
    with tc.GradientTape(persistent=True) as tape:
        tape.watch(w)
        y = tc.sum(w * xx)
    xx[0] = 1000.0  # an unwatched input, written after recording
    with pytest.raises(tc.GradientError, match=r"input 1 of 'multiply' \(a float32\[2\] tensor\) was written in place"):
        tape.gradient(y, w)


def test_setitem_of_a_watched_value_is_refused(device: str) -> None:
    w = tc.asarray([1.0, 2.0], device=device)
    buf = tc.zeros((3,), device=device)
    with tc.GradientTape() as tape:
        tape.watch(w)
        with pytest.raises(tc.GradientError, match="assignment from a float32"):
            buf[0:2] = w * 3
    assert tape is not None


def test_a_tape_records_only_its_own_thread(device: str) -> None:
    import threading

    w = tc.Variable([1.0], device=device)
    started, stop = threading.Event(), threading.Event()

    def other_thread() -> None:
        started.set()
        while not stop.is_set():
            w * 2.0

    t = threading.Thread(target=other_thread)
    with tc.GradientTape() as tape:
        t.start()
        started.wait()
        y = w * 3.0
        stop.set()
        t.join()
    assert len(tape._entries) == 1
    np.testing.assert_array_equal(tape.gradient(y, w).numpy(), [3.0])


_bad_grad = tc.custom_op("test_bad_grad", grad=lambda ctx, g: (g,))(lambda a, b: a + b)


def test_a_gradient_function_returning_too_few_values_is_an_error(device: str) -> None:
    bad = _bad_grad
    x = tc.asarray([1.0], device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        y = bad(x, x)
    with pytest.raises(tc.GradientError, match="returned 1 values for 2 inputs"):
        tape.gradient(y, x)


@pytest.mark.parametrize("op", ["multiply", "add", "matmul", "linear"])
def test_a_promoted_ops_gradient_reaches_each_source_in_its_own_dtype(device: str, op: str) -> None:
    # float32 with float64 computes in float64 (the Array API's promotion); each source's
    # gradient is the float64 gradient in the source's dtype, as JAX gives it (it raised
    # "an op's gradient function is wrong" before)
    from tensorcore.nn import functional as F

    gen = np.random.default_rng(7)
    a32 = gen.standard_normal((3, 4)).astype(np.float32)
    b64 = gen.standard_normal((4, 4) if op in ("matmul", "linear") else (3, 4))
    fn = {"multiply": lambda a, b: a * b, "add": lambda a, b: a + b, "matmul": lambda a, b: a @ b,
          "linear": lambda a, b: F.linear(b[:3], a)}[op]  # linear: a float64 input into float32 weights

    def grads(a_np: np.ndarray, b_np: np.ndarray) -> list:
        a, b = tc.Variable(a_np, device=device), tc.Variable(b_np, device=device)
        with tc.GradientTape() as tape:
            y = tc.sum(fn(a, b) * fn(a, b))
        return tape.gradient(y, [a, b])

    mixed = grads(a32, b64)
    wide = grads(a32.astype(np.float64), b64)
    assert mixed[0].dtype == tc.float32 and mixed[1].dtype == tc.float64
    np.testing.assert_allclose(mixed[0].numpy(), wide[0].numpy().astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(mixed[1].numpy(), wide[1].numpy(), rtol=1e-6)
