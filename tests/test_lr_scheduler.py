"""Learning-rate schedules: PyTorch's semantics, traced steps that follow them exactly as eager
ones do (the rate lives on the device), callable learning rates evaluated on the device, and
schedulers' state dicts."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim
from tensorcore.optim.lr_scheduler import CosineAnnealingLR, LinearWarmup, ReduceLROnPlateau, StepLR

rng = np.random.default_rng(11)
P0 = rng.standard_normal((4, 3))
GRADS = [rng.standard_normal((4, 3)) for _ in range(5)]
METRICS = [10.0, 9.5, 9.4] + [5.0] * 11


def _lrs(make: Callable[[optim.Optimizer], object], steps: int, lr: float = 0.1) -> list[float]:
    """The rate in effect at each of ``steps`` steps (epoch 0 first), stepping with METRICS."""
    opt = optim.SGD([tc.Variable(np.zeros(1))], lr=lr)
    sched = make(opt)
    out = []
    for k in range(steps):
        out.append(opt.lr)
        assert sched.get_last_lr() == [opt.lr]
        sched.step(METRICS[k]) if isinstance(sched, (ReduceLROnPlateau, LinearWarmup)) else sched.step()
    return out


def test_step_lr_and_cosine_annealing_follow_pytorch() -> None:
    assert _lrs(lambda o: StepLR(o, step_size=2, gamma=0.5), 6) == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    cosine = _lrs(lambda o: CosineAnnealingLR(o, T_max=4, eta_min=0.01), 9)
    np.testing.assert_allclose(cosine, [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(9)], rtol=1e-15)
    assert cosine[0] == 0.1 and cosine[4] == pytest.approx(0.01) and cosine[8] == pytest.approx(0.1)


def test_linear_warmup_alone_and_handing_over() -> None:
    warm = [0.025, 0.04375, 0.0625, 0.08125]
    np.testing.assert_allclose(_lrs(lambda o: LinearWarmup(o, 4, start_factor=0.25), 6), warm + [0.1, 0.1], rtol=1e-15)
    then_step = _lrs(lambda o: LinearWarmup(o, 4, after=StepLR(o, 2, gamma=0.5), start_factor=0.25), 9)
    np.testing.assert_allclose(then_step, warm + [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-15)
    then_cos = _lrs(lambda o: LinearWarmup(o, 2, after=CosineAnnealingLR(o, T_max=4)), 7)
    np.testing.assert_allclose(then_cos, [0.1 / 3, 0.1 * (1 / 3 + 2 / 3 / 2)] + [0.05 * (1 + math.cos(math.pi * e / 4))
                                                                               for e in range(5)], rtol=1e-15)
    default = LinearWarmup(optim.SGD([tc.Variable(np.zeros(1))], lr=0.3), 3)
    assert default.get_last_lr() == [pytest.approx(0.1)]  # PyTorch's LinearLR starts at a third


def test_reduce_lr_on_plateau_follows_pytorch() -> None:
    """patience 1, factor 0.5, rel threshold 0.1, cooldown 1, min_lr 0.2 (worked through by hand
    with PyTorch's rules: more than `patience` bad epochs reduce, a cooldown epoch counts none)."""
    make = lambda o: ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.1, cooldown=1, min_lr=0.2)  # noqa: E731
    got = _lrs(make, 13, lr=1.0)
    assert got == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
    opt = optim.SGD([tc.Variable(np.zeros(1))], lr=1.0)
    up = ReduceLROnPlateau(opt, mode="max", threshold=0.5, threshold_mode="abs", patience=0)
    for metric in (1.0, np.float32(1.4), tc.asarray(2.0)):  # 1.4 is not better by 0.5; a tensor is read
        up.step(metric)
    assert opt.lr == pytest.approx(0.1) and up.best == 2.0 and up.last_epoch == 3
    with pytest.raises(TypeError, match="takes a number \\(the monitored metric\\), got str"):
        up.step("2.0")


def test_warmup_hands_over_to_reduce_lr_on_plateau() -> None:
    opt = optim.SGD([tc.Variable(np.zeros(1))], lr=1.0)
    warm = LinearWarmup(opt, 2, after=ReduceLROnPlateau(opt, factor=0.5, patience=0), start_factor=0.5)
    assert opt.lr == 0.5
    warm.step(3.0)
    assert opt.lr == 0.75
    warm.step(3.0)  # warm: the plateau scheduler takes its first metric at the full rate
    assert opt.lr == 1.0
    warm.step(3.0)  # no better: reduce (patience 0)
    assert opt.lr == 0.5 and warm.get_last_lr() == [0.5]
    with pytest.raises(TypeError, match="pass the metric"):
        warm.step()


def _schedules() -> dict[str, Callable[[optim.Optimizer], object]]:
    return {
        "step": lambda o: StepLR(o, step_size=2, gamma=0.5),
        "cosine": lambda o: CosineAnnealingLR(o, T_max=5, eta_min=0.001),
        "warmup+cosine": lambda o: LinearWarmup(o, 3, after=CosineAnnealingLR(o, T_max=4)),
        "plateau": lambda o: ReduceLROnPlateau(o, factor=0.5, patience=1, threshold=0.1),
    }


def _train(device: str, make: Callable[[optim.Optimizer], object], traced: bool, cls: type = optim.SGD,
           steps: int = 9, **kwargs: object) -> tuple[np.ndarray, list[float]]:
    w = tc.Variable(P0.copy(), device=device)
    opt = cls([w], **(kwargs or {"lr": 0.1}))
    sched = make(opt)

    def step(g: tc.Tensor) -> None:
        opt.step([g])

    run = tc.function(step) if traced else step
    used = []
    for k in range(steps):
        used.append(opt.lr)
        run(tc.asarray(GRADS[k % len(GRADS)], device=device))
        sched.step(METRICS[k]) if isinstance(sched, (ReduceLROnPlateau, LinearWarmup)) else sched.step()
    if traced:
        assert run.trace_count == 1
    return w.numpy(), used


@pytest.mark.parametrize("name", list(_schedules()))
def test_a_traced_step_follows_each_schedule_exactly_as_the_eager_one(name: str, device: str) -> None:
    make = _schedules()[name]
    for cls, kwargs in ((optim.SGD, {"lr": 0.1, "momentum": 0.9}), (optim.AdamW, {"lr": 0.1, "weight_decay": 0.1})):
        eager, rates = _train(device, make, False, cls, **kwargs)
        traced, traced_rates = _train(device, make, True, cls, **kwargs)
        np.testing.assert_array_equal(traced, eager)
        assert traced_rates == rates and len(set(rates)) > 1
    plain, rates = _train(device, make, True)  # plain SGD against NumPy, with the rates actually used
    want = P0 - sum(lr * GRADS[k % len(GRADS)] for k, lr in enumerate(rates))
    np.testing.assert_allclose(plain, want, rtol=1e-12)


CALLABLES = {
    "exponential": lambda s: 0.1 * 0.5 ** (s // 2),
    "warmup then cosine": lambda s: tc.where(s < 3, 0.1 * (s + 1) / 3, 0.05 * (1 + tc.cos(math.pi * (s - 3) / 6))),
}


def _callable_reference(fn_name: str, steps: int) -> np.ndarray:
    s = np.arange(steps, dtype=np.float64)
    if fn_name == "exponential":
        return 0.1 * 0.5 ** (s // 2)
    return np.where(s < 3, 0.1 * (s + 1) / 3, 0.05 * (1 + np.cos(math.pi * (s - 3) / 6)))


@pytest.mark.parametrize("name", list(CALLABLES))
def test_a_callable_learning_rate_is_evaluated_on_the_device_every_step(name: str, device: str) -> None:
    steps = 8

    def train(traced: bool, cls: type = optim.SGD) -> tuple[np.ndarray, optim.Optimizer]:
        w = tc.Variable(P0.copy(), device=device)
        opt = cls([w], lr=CALLABLES[name])
        run = tc.function(lambda g: opt.step([g])) if traced else (lambda g: opt.step([g]))
        for k in range(steps):
            run(tc.asarray(GRADS[k % len(GRADS)], device=device))
        assert opt.iterations == steps and opt.lr is CALLABLES[name]
        return w.numpy(), opt

    eager, _ = train(False)
    traced, opt = train(True)
    np.testing.assert_array_equal(traced, eager)
    rates = _callable_reference(name, steps)
    np.testing.assert_allclose(eager, P0 - sum(r * GRADS[k % len(GRADS)] for k, r in enumerate(rates)), rtol=1e-12)
    np.testing.assert_array_equal(train(True, optim.Adam)[0], train(False, optim.Adam)[0])
    with pytest.raises(TypeError, match="is a callable lr\\(step\\), which is a schedule already"):
        StepLR(opt, 2)


@pytest.mark.parametrize("bad,error,match", [
    (lambda s: 0.1 if float(s) < 3 else 0.01, TypeError, "must compute its result with tensor operations"),
    (lambda s: min(0.1, 0.01 * (s + 1)), TypeError, "It did what a graph cannot capture: .*value is read"),
    (lambda s: math.cos(s), TypeError, "tensor operations"),
    (lambda s: None, TypeError, "returned NoneType"),
    (lambda s: tc.ones(3) * s, ValueError, "returned a tensor of shape \\(3,\\)"),
])
def test_a_callable_that_cannot_run_on_the_device_fails_at_the_first_step(bad: Callable, error: type, match: str,
                                                                           device: str) -> None:
    for traced in (False, True):
        w = tc.Variable(P0.copy(), device=device)
        opt = optim.SGD([w], lr=bad, momentum=0.9)
        run = tc.function(lambda g, opt=opt: opt.step([g])) if traced else (lambda g, opt=opt: opt.step([g]))
        with pytest.raises(error, match=match):
            run(tc.asarray(GRADS[0], device=device))
        np.testing.assert_array_equal(w.numpy(), P0)  # nothing was applied
        assert opt.iterations == 0 and not opt.state[0]["velocity"].numpy().any()


@pytest.mark.parametrize("name", list(_schedules()))
def test_a_scheduler_restored_from_its_state_dict_goes_on_exactly(name: str) -> None:
    make = _schedules()[name]
    whole = _lrs(make, 12)
    opt = optim.SGD([tc.Variable(np.zeros(1))], lr=0.1)
    sched = make(opt)
    for k in range(5):
        sched.step(METRICS[k]) if isinstance(sched, (ReduceLROnPlateau, LinearWarmup)) else sched.step()
    saved = json.loads(json.dumps(sched.state_dict()))  # JSON values only
    opt_saved = opt.state_dict()
    fresh_opt = optim.SGD([tc.Variable(np.zeros(1))], lr=0.1)
    fresh = make(fresh_opt)
    assert fresh.state_dict_problems(saved) == []
    fresh.load_state_dict(saved)
    fresh_opt.load_state_dict(opt_saved)  # the rate itself is the optimizer's state, as in PyTorch
    rest = []
    for k in range(5, 12):
        rest.append(fresh_opt.lr)
        fresh.step(METRICS[k]) if isinstance(fresh, (ReduceLROnPlateau, LinearWarmup)) else fresh.step()
    assert rest == whole[5:]
    assert fresh.last_epoch == 12  # epoch 0 at construction (the plateau scheduler: before its first metric)


def test_bad_scheduler_settings_and_states_are_refused() -> None:
    opt = optim.SGD([tc.Variable(np.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="step_size must be an int >= 1, got 0"):
        StepLR(opt, 0)
    with pytest.raises(ValueError, match="factor must be < 1"):
        ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="start_factor must be a number > 0.0 and <= 1.0"):
        LinearWarmup(opt, 3, start_factor=0.0)
    with pytest.raises(TypeError, match="expected a tc.optim optimizer"):
        StepLR("sgd", 2)
    with pytest.raises(ValueError, match="schedules another optimizer"):
        LinearWarmup(opt, 2, after=StepLR(optim.SGD([tc.Variable(np.zeros(1))], lr=0.1), 2))
    sched = StepLR(opt, 3, gamma=0.5)
    sched.step()
    state = sched.state_dict() | {"step_size": 4, "last_epoch": "one", "extra": 1}
    del state["base_lr"]
    with pytest.raises(ValueError) as info:
        sched.load_state_dict(state)
    for part in ("missing keys: base_lr", "unexpected keys: extra", "step_size: saved 4, but this scheduler has 3",
                 "last_epoch: must be an int >= -1, got 'one'"):
        assert part in str(info.value)
    assert sched.last_epoch == 1 and sched.state_dict()["step_size"] == 3
    with pytest.raises(ValueError, match="type: saved 'StepLR', but this scheduler has 'CosineAnnealingLR'"):
        CosineAnnealingLR(opt, 3).load_state_dict(StepLR(opt, 3).state_dict(), strict=False)
