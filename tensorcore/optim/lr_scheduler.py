"""Learning-rate schedules, as PyTorch's ``torch.optim.lr_scheduler``: ``StepLR``,
``CosineAnnealingLR``, ``LinearWarmup`` (which hands over to another schedule) and
``ReduceLROnPlateau``.

A scheduler computes the learning rate on the host and assigns it (``optimizer.lr = x``),
which writes the optimizer's device scalars in place: a traced step (``tc.function``) follows
the schedule without a retrace, and nothing is uploaded in the steps where the rate does not
change. As in PyTorch, the constructor applies epoch 0, ``step()`` advances ``last_epoch`` by
one, and ``get_last_lr()`` returns the rate last set, as a one-element list (one parameter
group). The rates come from closed forms (``base_lr * gamma ** (epoch // step_size)``...), so a
restored scheduler gives exactly the rates of an uninterrupted one.

``state_dict()`` holds JSON values only; a checkpoint saves it apart from the optimizer's.
A learning rate that depends on the optimizer's own step count inside a traced step, with no
host call at all, is a callable ``lr(step)`` given to the optimizer instead.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from tensorcore.optim.optimizer import Optimizer
from tensorcore.tensor import Tensor

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LinearWarmup", "ReduceLROnPlateau"]


def _check_optimizer(owner: str, optimizer: Any) -> Optimizer:
    """``optimizer``, if a scheduler can set its learning rate (a number, not a callable)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: expected a tc.optim optimizer, got {type(optimizer).__name__}")
    if not isinstance(optimizer.lr, float):
        raise TypeError(f"{owner}: the optimizer's learning rate is a callable lr(step), which is a schedule "
                        "already; a scheduler sets a number: create the optimizer with lr=<number>")
    return optimizer


def _positive_int(owner: str, name: str, value: Any) -> int:
    """``value`` if an int >= 1, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")
    return value


def _count(owner: str, name: str, value: Any) -> int:
    """``value`` if an int >= 0, else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {name} must be an int >= 0, got {value!r}")
    return value


def _number(owner: str, name: str, value: Any, low: float, high: float = math.inf, open_low: bool = False) -> float:
    """``value`` as a float if a finite number within the bounds, else a ``ValueError``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
        (value > low if open_low else value >= low) and value <= high
    if not ok:
        bounds = f"{'>' if open_low else '>='} {low}" + (f" and <= {high}" if high != math.inf else "")
        raise ValueError(f"{owner}: {name} must be a number {bounds}, got {value!r}")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What each restored field may hold (a JSON round trip gives lists and plain numbers).
_FIELD_CHECKS = {
    "last_epoch": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= -1, "an int >= -1"),
    "base_lr": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "last_lr": (lambda v: isinstance(v, list) and len(v) == 1 and _is_number(v[0]), "a list of one number"),
    "best": (lambda v: v is None or _is_number(v), "a number or None"),
    "num_bad_epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
    "cooldown_counter": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an int >= 0"),
}


class _Stateful:
    """``state_dict``/``load_state_dict`` over JSON values: ``_settings`` must match on load;
    ``_fields`` (state key -> attribute) are restored."""

    _fields: dict[str, str] = {}

    def _settings(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's position and settings, as JSON values."""
        out = {"type": type(self).__name__, **self._settings()}
        for key, attribute in self._fields.items():
            value = getattr(self, attribute)
            out[key] = list(value) if isinstance(value, list) else value
        return out

    def state_dict_problems(self, state: dict[str, Any], strict: bool = True) -> list[str]:
        """Every reason ``load_state_dict(state)`` would refuse ``state`` (empty: it loads)."""
        if not isinstance(state, dict):
            return [f"the state must be the dict that state_dict() returns, got {type(state).__name__}"]
        own = self.state_dict()
        out = []
        if strict:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            out += [f"missing keys: {', '.join(missing)}"] if missing else []
            out += [f"unexpected keys: {', '.join(map(str, unexpected))}"] if unexpected else []
        for key in ("type", *self._settings()):
            if key in state and state[key] != own[key]:
                out.append(f"{key}: saved {state[key]!r}, but this scheduler has {own[key]!r}")
        for key in self._fields:
            check, what = _FIELD_CHECKS[key]
            if key in state and not check(state[key]):
                out.append(f"{key}: must be {what}, got {state[key]!r}")
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Restore a :meth:`state_dict` (checked first: a ``ValueError`` names every problem,
        and nothing changes). The optimizer's learning rate is the optimizer's state: restore
        it with the optimizer's ``load_state_dict``, as in PyTorch."""
        found = self.state_dict_problems(state, strict)
        if found:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(found)} problem(s), nothing was loaded:\n  - "
                             + "\n  - ".join(found))
        for key, attribute in self._fields.items():
            if key in state:
                value = state[key]
                setattr(self, attribute, [float(v) for v in value] if isinstance(value, list) else value)


class LRScheduler(_Stateful):
    """A schedule given by a closed form ``lr_at(epoch)``; subclasses define it."""

    _fields = {"last_epoch": "last_epoch", "base_lr": "base_lr", "last_lr": "_last_lr"}

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = _check_optimizer(type(self).__name__, optimizer)
        self.base_lr = float(optimizer.lr)
        self.last_epoch = -1
        self._last_lr = [self.base_lr]
        self.step()  # epoch 0, as PyTorch's constructors do

    def lr_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0 is the first)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch (or step, as you count) and set the optimizer's learning rate."""
        self._set_epoch(self.last_epoch + 1)

    def _set_epoch(self, epoch: int) -> None:
        self.last_epoch = epoch
        rate = self.lr_at(epoch)
        self.optimizer.lr = rate  # a device write only when the rate changes
        self._last_lr = [rate]

    def get_last_lr(self) -> list[float]:
        """The learning rate the scheduler set last (a list: PyTorch's, one per parameter group)."""
        return list(self._last_lr)


class StepLR(LRScheduler):
    """``base_lr * gamma ** (epoch // step_size)``: decay by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _number("StepLR", "gamma", gamma, 0.0, open_low=True)
        super().__init__(optimizer)

    def _settings(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def lr_at(self, epoch: int) -> float:
        """``base_lr * gamma ** (epoch // step_size)``."""
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``: from ``base_lr`` at
    epoch 0 down to ``eta_min`` at ``T_max`` (and up again after, as PyTorch's does)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 - PyTorch's name
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", eta_min, 0.0)
        super().__init__(optimizer)

    def _settings(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def lr_at(self, epoch: int) -> float:
        """The cosine's value at ``epoch`` (exactly ``base_lr`` at 0)."""
        if epoch == 0:
            return self.base_lr
        return self.eta_min + (self.base_lr - self.eta_min) * (1.0 + math.cos(math.pi * epoch / self.T_max)) / 2.0


class LinearWarmup(LRScheduler):
    """Warm up linearly from ``start_factor * base_lr`` (epoch 0) to ``base_lr`` (epoch
    ``warmup_steps``), then hand over to ``after``, another scheduler created before this one
    on the same optimizer, whose epoch 0 is then ``warmup_steps`` (PyTorch's ``LinearLR``
    followed by ``SequentialLR``). Without ``after`` the rate stays at ``base_lr``. With a
    ``ReduceLROnPlateau`` after it, ``step(metric)`` passes the metric on once warm."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int, after: LRScheduler | ReduceLROnPlateau | None = None,
                 start_factor: float = 1.0 / 3) -> None:
        self.warmup_steps = _positive_int("LinearWarmup", "warmup_steps", warmup_steps)
        self.start_factor = _number("LinearWarmup", "start_factor", start_factor, 0.0, 1.0, open_low=True)
        if after is not None:
            if not isinstance(after, (LRScheduler, ReduceLROnPlateau)):
                raise TypeError(f"LinearWarmup: after must be a scheduler, got {type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after schedules another optimizer; create it on the same one")
            if isinstance(after, LinearWarmup):
                raise TypeError("LinearWarmup: after is another LinearWarmup; give one warmup its full length")
        self.after = after
        _check_optimizer("LinearWarmup", optimizer)
        if isinstance(after, LRScheduler):
            optimizer.lr = after.base_lr  # where ``after`` starts from, whatever it set since
        super().__init__(optimizer)

    def _settings(self) -> dict[str, Any]:
        return {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor,
                "after": None if self.after is None else type(self.after).__name__}

    def lr_at(self, epoch: int) -> float:
        """The warm-up rate at ``epoch`` (``base_lr`` from ``warmup_steps`` on)."""
        progress = min(epoch, self.warmup_steps) / self.warmup_steps
        return self.base_lr * (self.start_factor + (1.0 - self.start_factor) * progress)

    def step(self, metric: Any = None) -> None:
        """Advance one epoch; ``metric`` goes to a ``ReduceLROnPlateau`` after the warm-up."""
        epoch = self.last_epoch + 1
        after = self.after
        if epoch < self.warmup_steps or after is None:
            self._set_epoch(epoch)
        elif isinstance(after, ReduceLROnPlateau):
            if metric is None:
                raise TypeError("LinearWarmup.step: the warm-up is over and a ReduceLROnPlateau takes over: "
                                "pass the metric, step(metric)")
            if epoch == self.warmup_steps:
                self.optimizer.lr = self.base_lr  # the hand-over: the plateau scheduler starts here
            self.last_epoch = epoch
            after.step(metric)
            self._last_lr = after.get_last_lr()
        else:
            self.last_epoch = epoch
            after._set_epoch(epoch - self.warmup_steps)
            self._last_lr = after.get_last_lr()

    def state_dict(self) -> dict[str, Any]:
        """The warm-up's state, with the state of the scheduler after it under ``"after_state"``."""
        out = super().state_dict()
        out["after_state"] = None if self.after is None else self.after.state_dict()
        return out

    def state_dict_problems(self, state: dict[str, Any], strict: bool = True) -> list[str]:
        """Every reason ``load_state_dict(state)`` would refuse ``state``, the ``after`` one's too."""
        out = super().state_dict_problems(state, strict)
        inner = state.get("after_state") if isinstance(state, dict) else None
        if self.after is not None and isinstance(inner, dict):
            out += [f"after_state: {p}" for p in self.after.state_dict_problems(inner, strict)]
        return out

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Restore this and the ``after`` scheduler's state (all checked before any is written)."""
        super().load_state_dict(state, strict)
        if self.after is not None and isinstance(state.get("after_state"), dict):
            self.after.load_state_dict(state["after_state"], strict)


class ReduceLROnPlateau(_Stateful):
    """Multiply the learning rate by ``factor`` once a metric has stopped improving for more
    than ``patience`` epochs (PyTorch's ``ReduceLROnPlateau``: the same ``mode``,
    ``threshold``/``threshold_mode``, ``cooldown``, ``min_lr`` and ``eps``). ``step(metric)``
    after each epoch; the metric may be a tensor (its value is read)."""

    _fields = {"last_epoch": "last_epoch", "best": "best", "num_bad_epochs": "num_bad_epochs",
               "cooldown_counter": "cooldown_counter", "last_lr": "_last_lr"}

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: float = 0.0,
                 eps: float = 1e-8) -> None:
        owner = "ReduceLROnPlateau"
        self.optimizer = _check_optimizer(owner, optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _number(owner, "factor", factor, 0.0, open_low=True)
        if self.factor >= 1.0:
            raise ValueError(f"{owner}: factor must be < 1 (the rate is multiplied by it), got {factor!r}")
        self.patience = _count(owner, "patience", patience)
        self.threshold = _number(owner, "threshold", threshold, 0.0)
        self.cooldown = _count(owner, "cooldown", cooldown)
        self.min_lr = _number(owner, "min_lr", min_lr, 0.0)
        self.eps = _number(owner, "eps", eps, 0.0)
        self.last_epoch = 0
        self.best: float | None = None  # None until a first better metric (PyTorch's +-inf, kept JSON-able)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = [float(optimizer.lr)]

    def _settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "threshold_mode": self.threshold_mode, "cooldown": self.cooldown, "min_lr": self.min_lr,
                "eps": self.eps}

    def _is_better(self, value: float) -> bool:
        best, t = self.best, self.threshold
        if best is None:  # PyTorch starts from +-inf
            best = math.inf if self.mode == "min" else -math.inf
        if self.threshold_mode == "rel":
            return value < best * (1.0 - t) if self.mode == "min" else value > best * (1.0 + t)
        return value < best - t if self.mode == "min" else value > best + t

    def step(self, metric: Any) -> None:
        """Count one epoch with its ``metric`` (lower is better with ``mode="min"``)."""
        if isinstance(metric, Tensor):
            metric = metric.item()  # a host read: once per epoch
        if isinstance(metric, (bool, np.bool_)) or not isinstance(metric, numbers.Real):
            raise TypeError(f"ReduceLROnPlateau.step takes a number (the monitored metric), got {type(metric).__name__}")
        value = float(metric)
        self.last_epoch += 1
        if self._is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = float(self.optimizer.lr)
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [float(self.optimizer.lr)]

    def get_last_lr(self) -> list[float]:
        """The learning rate after the last ``step`` (a one-element list, as PyTorch's)."""
        return list(self._last_lr)
