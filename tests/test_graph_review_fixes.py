"""Regressions from the review of the graph layer: each once gave a different result (or a
crash) in graph mode than in eager mode."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import tensorcore as tc


def both(fn, *args):
    """(eager result, graph result) as NumPy."""
    eager = fn(*args)
    graph = tc.function(fn)(*args)
    return np.asarray(eager.numpy()), np.asarray(graph.numpy())


def test_double_negation_is_kept_when_the_value_changes_between_them(device: str) -> None:
    def f(x):
        a = x * 2.0
        y = -a
        a[0] = 100.0  # a changes after y was computed from it
        return -y * 3.0

    eager, graph = both(f, tc.asarray(np.array([1.0, 2.0, 3.0]), device=device))
    np.testing.assert_array_equal(graph, eager)
    np.testing.assert_array_equal(graph, [6.0, 12.0, 18.0])


def test_an_unread_random_draw_still_moves_the_generator(device: str) -> None:
    def f(x):
        tc.random.normal((3,), device=x.device)  # unused, but eager draws it
        return x + tc.random.normal((3,), device=x.device)

    x = tc.zeros(3, device=device)
    traced = tc.function(f)
    tc.random.seed(0)
    eager = f(x).numpy()
    tc.random.seed(0)
    np.testing.assert_allclose(traced(x).numpy(), eager, rtol=1e-6)


def test_creating_a_variable_while_tracing_is_refused_naming_the_line() -> None:
    @tc.function
    def f(x):
        v = tc.Variable(np.zeros(3, np.float32))
        v.assign_add(x)
        return v * 2.0

    with pytest.raises(tc.TraceError, match=r"tc.Variable is created while tracing.*test_graph_review_fixes.py:\d+"):
        f(tc.ones(3))


def _quadratic_training(cls: str, kwargs: dict, device: str) -> tuple:
    """(w, step, optimizer): one optimizer step on sum((w * x)**2) per call of step(x)."""
    w = tc.Variable(np.array([1.0, -2.0, 0.5], np.float32), device=device)
    opt = getattr(tc.optim, cls)([w], **kwargs)

    def step(x):
        with tc.GradientTape() as tape:
            loss = tc.sum((w * x) ** 2)
        opt.step(tape.gradient(loss, [w]))
        return loss

    return w, step, opt


@pytest.mark.parametrize("cls,kwargs", [("Adam", {"lr": 0.1}), ("AdamW", {"lr": 0.05, "weight_decay": 0.1})])
def test_adam_inside_a_traced_function_advances_its_bias_correction_every_run(cls: str, kwargs: dict,
                                                                             device: str) -> None:
    (w_eager, eager, _), (w_traced, traced, _) = _quadratic_training(cls, kwargs, device), \
        _quadratic_training(cls, kwargs, device)
    traced = tc.function(traced)
    x = tc.asarray(np.array([0.5, 1.0, -1.5], np.float32), device=device)
    for _ in range(5):  # a frozen step count would repeat the first step's correction
        np.testing.assert_array_equal(traced(x).numpy(), eager(x).numpy())
        np.testing.assert_array_equal(w_traced.numpy(), w_eager.numpy())
    assert traced.trace_count == 1


@pytest.mark.skipif("opencl:0" not in [str(i.device) for i in tc.devices()], reason="needs a second device")
@pytest.mark.parametrize("cls,kwargs", [("Adam", {"lr": 0.05}), ("SGD", {"lr": 0.05, "momentum": 0.9})])
def test_optimizer_state_that_follows_a_moved_parameter_persists_in_a_traced_step(cls: str, kwargs: dict) -> None:
    """The move of the state is done once, untraced: traced, it would copy the stale state
    from the old device on every run, and the moments would never accumulate."""
    def train(traced: bool) -> tuple:
        w, step, opt = _quadratic_training(cls, kwargs, "cpu")
        f = tc.function(step) if traced else step
        x = np.array([0.5, 1.0, -1.5], np.float32)
        for _ in range(3):
            f(tc.asarray(x))
        w.move_to_device("opencl:0")
        for _ in range(4):
            f(tc.asarray(x, device="opencl:0"))
        return w.numpy(), [v.numpy() for v in opt.state[0].values()]

    (w_eager, state_eager), (w_traced, state_traced) = train(False), train(True)
    np.testing.assert_array_equal(w_traced, w_eager)
    for got, want in zip(state_traced, state_eager):
        np.testing.assert_array_equal(got, want)


def test_signed_zero_and_nan_arguments_have_their_own_traces() -> None:
    f = tc.function(lambda x, s: x * s)
    x = tc.asarray(np.array([1.0, 2.0]))
    assert not np.signbit(f(x, 0.0).numpy()).any()
    assert np.signbit(f(x, -0.0).numpy()).all()
    assert np.isnan(f(x, float("nan")).numpy()).all()
    f(x, float("nan"))
    assert f.trace_count == 3  # a NaN finds its own trace again


@pytest.mark.skipif("opencl:0" not in [str(i.device) for i in tc.devices()], reason="no opencl:0 device")
def test_the_default_device_is_part_of_the_signature() -> None:
    f = tc.function(lambda x: x + tc.ones(2))
    x = tc.ones(2)
    try:
        tc.set_default_device("opencl:0")
        assert str(f(x).device) == str((x + tc.ones(2)).device) == "opencl:0"
        tc.set_default_device("cpu")
        assert str(f(x).device) == "cpu:0"
    finally:
        tc.set_default_device(None)


@pytest.mark.skipif("opencl:0" not in [str(i.device) for i in tc.devices()], reason="no opencl:0 device")
def test_an_update_whose_kernel_declines_at_run_time_falls_back_like_eager() -> None:
    def f(x):
        a = x * 2.0
        a[True] = 5.0  # the OpenCL setitem declines a bool key: eager falls back to cpu
        return a

    eager, graph = both(f, tc.asarray(np.array([1.0, 2.0, 3.0]), device="opencl:0"))
    np.testing.assert_array_equal(graph, eager)


def test_namedtuples_are_returned_and_dict_arguments_may_mix_key_types(device: str) -> None:
    Pair = namedtuple("Pair", "a b")
    f = tc.function(lambda x, opts: Pair(x * opts["k"], x + opts[1]))
    out = f(tc.ones(2, device=device), {"k": 2.0, 1: 3.0})
    assert isinstance(out, Pair)
    np.testing.assert_array_equal(out.a.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(out.b.numpy(), [4.0, 4.0])
