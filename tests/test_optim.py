"""Optimizers against hand-written NumPy updates, on every device."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim
from tensorcore.ops.optim_updates import ASSIGN

rng = np.random.default_rng(3)
P0 = rng.standard_normal((3, 2))
GRADS = [rng.standard_normal((3, 2)) for _ in range(4)]


def _run(opt_cls: type, device: str, **kwargs: object) -> np.ndarray:
    p = tc.Variable(P0.copy(), device=device)
    opt = opt_cls([p], **kwargs)
    for g in GRADS:
        opt.step([tc.asarray(g, device=device)])
    assert p.device == tc.Device(device)
    return p.numpy()


def _sgd_reference(lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0) -> np.ndarray:
    p, v = P0.copy(), np.zeros_like(P0)
    for g in GRADS:
        g = g + weight_decay * p
        v = momentum * v + g
        p = p - lr * ((g + momentum * v) if nesterov else (v if momentum else g))
    return p


def _adam_reference(lr: float, b1: float, b2: float, eps: float, wd: float, decoupled: bool) -> np.ndarray:
    p, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for t, g in enumerate(GRADS, 1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.1}, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9, "nesterov": True},
    {"lr": 0.1, "momentum": 0.5, "weight_decay": 0.01},
])
def test_sgd_matches_reference(kwargs: dict, device: str) -> None:
    np.testing.assert_allclose(_run(optim.SGD, device, **kwargs), _sgd_reference(**kwargs), rtol=1e-12)


@pytest.mark.parametrize("cls,decoupled,wd", [(optim.Adam, False, 0.0), (optim.Adam, False, 0.1), (optim.AdamW, True, 0.1)])
def test_adam_and_adamw_match_reference(cls: type, decoupled: bool, wd: float, device: str) -> None:
    got = _run(cls, device, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)
    np.testing.assert_allclose(got, _adam_reference(0.01, 0.9, 0.99, 1e-8, wd, decoupled), rtol=1e-10)


def test_optimizer_state_lives_on_the_parameter_device(device: str) -> None:
    p = tc.Variable(P0.copy(), device=device)
    opt = optim.Adam([p])
    assert opt.state[0]["m"].device == tc.Device(device) and opt.state[0]["v"].device == tc.Device(device)


def test_bad_step_inputs_are_rejected_and_leave_parameters_unchanged(device: str) -> None:
    p = tc.Variable(P0.copy(), device=device, name="w")
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="got 2 gradients for 1 parameters"):
        opt.step([tc.zeros((3, 2), device=device, dtype=tc.float64)] * 2)
    with pytest.raises(tc.OpError, match=r"gradient 0 is float64\[2, 3\] but parameter 'w' is float64\[3, 2\]"):
        opt.step([tc.zeros((2, 3), device=device, dtype=tc.float64)])
    opt.step([None])
    np.testing.assert_array_equal(p.numpy(), P0)
    with pytest.raises(ValueError, match="learning rate must be positive"):
        optim.SGD([p], lr=0.0)
    with pytest.raises(ValueError, match="nesterov=True needs a positive momentum"):
        optim.SGD([p], lr=0.1, nesterov=True)


def test_a_rejected_step_changes_no_parameter_and_no_state() -> None:
    a = tc.Variable(np.ones(2))
    b = tc.Variable(np.ones(3))
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    with pytest.raises(tc.OpError, match="gradient 1"):
        opt.step([tc.ones((2,), dtype=tc.float64), tc.ones((2,), dtype=tc.float64)])
    np.testing.assert_array_equal(a.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(opt.state[0]["velocity"].numpy(), [0.0, 0.0])
    assert opt.iterations == 0


def test_adam_counts_steps_per_parameter() -> None:
    a, b = tc.Variable(np.ones(2)), tc.Variable(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    g = tc.ones((2,), dtype=tc.float64)
    opt.step([g, None])
    opt.step([g, g])
    powers = [opt.state[i]["schedule"].numpy()[:2] for i in (0, 1)]  # [beta1**t, beta2**t]
    np.testing.assert_allclose(powers[0], [0.9**2, 0.999**2], rtol=1e-15)
    np.testing.assert_allclose(powers[1], [0.9, 0.999], rtol=1e-15)
    np.testing.assert_allclose(b.numpy(), [0.9, 0.9])  # a first step: lr * m_hat / sqrt(v_hat) = lr


def test_a_malformed_adam_schedule_is_rejected_before_anything_is_written(device: str) -> None:
    from tensorcore.dispatch import apply_inplace
    from tensorcore.ops.optim_updates import ADAM_SCHEDULE, ADAM_STEP

    p, m, v = (tc.asarray(np.full(3, x, np.float32), device=device) for x in (1.0, 0.5, 0.25))
    lr, step = tc.asarray(np.array(0.1), device=device), tc.asarray(np.array(0.0), device=device)
    attrs = {"beta1": 0.9, "beta2": 0.999, "weight_decay": 0.1, "decoupled": True}
    for bad in (np.ones(2), np.ones(4, np.int64)):
        schedule = tc.asarray(bad, device=device)
        with pytest.raises(tc.OpError, match="schedule must be"):
            apply_inplace(ADAM_STEP, p, (tc.ones(3, device=device), m, v, schedule, lr), attrs)
        with pytest.raises(tc.OpError, match="schedule must be"):
            apply_inplace(ADAM_SCHEDULE, schedule, (lr, step), {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
        np.testing.assert_array_equal(schedule.numpy(), bad)
    good = tc.asarray(np.array([1.0, 1.0, 0.0, 0.0]), device=device)
    with pytest.raises(tc.OpError, match="learning rate must be one real number"):
        apply_inplace(ADAM_SCHEDULE, good, (tc.asarray(np.ones(2), device=device), step),
                      {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    with pytest.raises(tc.OpError, match="step counter must be"):
        apply_inplace(ADAM_SCHEDULE, good, (lr, tc.asarray(np.zeros(3), device=device)),
                      {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    np.testing.assert_array_equal(good.numpy(), [1.0, 1.0, 0.0, 0.0])
    assert step.numpy() == 0.0
    for t, x in ((p, 1.0), (m, 0.5), (v, 0.25)):
        np.testing.assert_array_equal(t.numpy(), np.full(3, x, np.float32))


def test_update_ops_read_the_learning_rate_tensor_and_advance_the_step_counter(device: str) -> None:
    """The ops' own contract: ``lr`` is read from the device on every call; ``step`` (when
    given) goes up by one per call; None leaves counting to another update."""
    from tensorcore.dispatch import apply_inplace
    from tensorcore.ops.optim_updates import ADAM_SCHEDULE, SGD_STEP

    p = tc.asarray(np.ones(5, np.float32), device=device)
    g = tc.asarray(np.full(5, 2.0, np.float32), device=device)
    lr, step = tc.asarray(np.array(0.25), device=device), tc.asarray(np.array(0.0), device=device)
    attrs = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0}
    apply_inplace(SGD_STEP, p, (g, None, lr, step), attrs)
    np.testing.assert_array_equal(p.numpy(), np.full(5, 0.5, np.float32))
    apply_inplace(ASSIGN, lr, (0.125,))
    apply_inplace(SGD_STEP, p, (g, None, lr, None), attrs)
    np.testing.assert_array_equal(p.numpy(), np.full(5, 0.25, np.float32))
    assert step.numpy() == 1.0
    schedule = tc.asarray(np.array([1.0, 1.0, 0.0, 0.0]), device=device)
    apply_inplace(ADAM_SCHEDULE, schedule, (lr, step), {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    np.testing.assert_allclose(schedule.numpy()[2], 0.125 * np.sqrt(1 - 0.999) / (1 - 0.9), rtol=1e-15)
    assert step.numpy() == 2.0


def _with_lr_changes(device: str, traced: bool, cls: type = optim.SGD, **kwargs: object) -> tuple[np.ndarray, int]:
    w = tc.Variable(P0.copy(), device=device)
    opt = cls([w], **kwargs)

    def step(g: tc.Tensor) -> None:
        opt.step([g])

    run = tc.function(step) if traced else step
    for k, g in enumerate(GRADS):
        run(tc.asarray(g, device=device))
        opt.lr = [0.5, 1e-12, 0.05, 0.05][k]  # the last one is a repeat: nothing to write
    assert opt.lr == 0.05 and isinstance(opt.lr, float)
    if traced:
        assert run.trace_count == 1
    return w.numpy(), opt.iterations


@pytest.mark.parametrize("cls,kwargs", [(optim.SGD, {"lr": 0.1, "momentum": 0.9}), (optim.Adam, {"lr": 0.1}),
                                        (optim.AdamW, {"lr": 0.1, "weight_decay": 0.1})])
def test_assigning_lr_takes_effect_eagerly_and_in_a_traced_step(cls: type, kwargs: dict, device: str) -> None:
    eager, eager_count = _with_lr_changes(device, False, cls, **kwargs)
    traced, traced_count = _with_lr_changes(device, True, cls, **kwargs)
    np.testing.assert_array_equal(traced, eager)
    assert eager_count == traced_count == len(GRADS)  # every run of the graph counted


def test_a_traced_step_after_lr_is_nearly_zero_does_not_move_the_weights(device: str) -> None:
    """The report of issue 11: a traced step kept moving the weights after ``opt.lr = 1e-12``."""
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.SGD([w], lr=0.1)
    step = tc.function(lambda g: opt.step([g]))
    g = tc.asarray(GRADS[0], device=device)
    step(g)
    opt.lr = 0.0
    before = w.numpy()
    step(g)
    np.testing.assert_array_equal(w.numpy(), before)
    np.testing.assert_array_equal(before, P0 - 0.1 * GRADS[0])


def test_one_lr_tensor_per_device_and_counters_agree_across_devices() -> None:
    devices = [str(i.device) for i in tc.devices()]
    if len(devices) < 2:
        pytest.skip("needs two devices")
    a, b = tc.Variable(P0.copy(), device=devices[0]), tc.Variable(P0.copy(), device=devices[1])
    opt = optim.SGD([a, b], lr=0.1)
    assert sorted(map(str, opt._lr_tensors)) == sorted(devices[:2])
    step = tc.function(lambda ga, gb: opt.step([ga, gb]))
    step(tc.asarray(GRADS[0], device=devices[0]), tc.asarray(GRADS[0], device=devices[1]))
    opt.lr = 0.2
    opt.step([tc.asarray(GRADS[1], device=devices[0]), None])  # b's device counts apart
    step(tc.asarray(GRADS[2], device=devices[0]), tc.asarray(GRADS[2], device=devices[1]))
    for t in opt._lr_tensors.values():
        assert float(t.numpy()) == 0.2
    assert [float(c.numpy()) for c in opt._replica_steps[0].values()] == [3.0, 3.0]
    assert opt.iterations == 3
    np.testing.assert_allclose(a.numpy(), P0 - 0.1 * GRADS[0] - 0.2 * GRADS[1] - 0.2 * GRADS[2], rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), P0 - 0.1 * GRADS[0] - 0.2 * GRADS[2], rtol=1e-12)


def test_lr_setter_and_constructor_refuse_what_is_not_a_learning_rate(device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.SGD([w], lr=0.1)
    for bad, error, match in ((-0.1, ValueError, "finite number >= 0"), (float("nan"), ValueError, "finite"),
                              ("0.1", TypeError, "got str"), (True, TypeError, "got bool"),
                              (tc.asarray(0.1), TypeError, "got a tensor")):
        with pytest.raises(error, match=match):
            opt.lr = bad
    assert opt.lr == 0.1
    assert float(opt._lr_tensors[tc.Device(device)].numpy()) == 0.1
    with pytest.raises(TypeError, match="got NoneType"):
        optim.Adam([w], lr=None)


def test_switching_between_a_number_and_a_callable_after_a_trace_is_refused(device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.SGD([w], lr=0.1)
    opt.lr = lambda s: 0.1 + 0.0 * s  # before any trace: allowed
    opt.lr = 0.1
    step = tc.function(lambda g: opt.step([g]))
    step(tc.asarray(GRADS[0], device=device))
    with pytest.raises(TypeError, match="traced step .* captured the optimizer"):
        opt.lr = lambda s: 0.2 + 0.0 * s
    assert opt.lr == 0.1


def test_iterations_counts_every_run_of_a_traced_step(device: str) -> None:
    w = tc.Variable(P0.copy(), device=device)
    opt = optim.Adam([w], lr=0.01)
    opt.step([tc.asarray(GRADS[0], device=device)])
    assert opt.iterations == 1 and opt._host_iterations == 1  # eager only: no device read
    step = tc.function(lambda g: opt.step([g]))
    for g in GRADS[1:]:
        step(tc.asarray(g, device=device))
    opt.step([tc.asarray(GRADS[0], device=device)])
    assert opt.iterations == len(GRADS) + 1
