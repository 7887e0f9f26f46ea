"""Optimizers against hand-written NumPy updates, on every device."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim

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
    attrs = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.1, "decoupled": True}
    for bad in (np.ones(2), np.ones(4, np.int64)):
        schedule = tc.asarray(bad, device=device)
        with pytest.raises(tc.OpError, match="schedule must be"):
            apply_inplace(ADAM_STEP, p, (tc.ones(3, device=device), m, v, schedule), attrs)
        with pytest.raises(tc.OpError, match="schedule must be"):
            apply_inplace(ADAM_SCHEDULE, schedule, (), {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
        np.testing.assert_array_equal(schedule.numpy(), bad)
    for t, x in ((p, 1.0), (m, 0.5), (v, 0.25)):
        np.testing.assert_array_equal(t.numpy(), np.full(3, x, np.float32))
