"""Learning-rate values: checks of what a user gives, the dtype of the device scalars, and the
evaluation of a callable learning rate ``lr(step)`` on the device, from the step counter."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorcore import dispatch
from tensorcore.device import Device
from tensorcore.graph.ir import Graph
from tensorcore.graph.trace import TraceError, Tracer
from tensorcore.ops.creation import asarray
from tensorcore.ops.logic import astype
from tensorcore.runtime import devices
from tensorcore.tensor import Tensor


@functools.cache
def state_dtype(device: Device) -> np.dtype:
    """float64 (as NumPy computes Adam's bias correction), unless the device has no float64:
    the dtype of Adam's schedule, the lr tensors and the step counters there."""
    info = next((d for d in devices() if d.device == device), None)
    return np.dtype(np.float32 if info is not None and info.details.get("float64") is False else np.float64)


def is_callable_lr(value: Any) -> bool:
    """Whether ``value`` is a learning-rate schedule ``lr(step)`` rather than a number."""
    return callable(value) and not isinstance(value, (Tensor, numbers.Number))


def check_rate(owner: str, value: Any, positive: bool = False) -> float:
    """``value`` as a learning rate: a finite real number, >= 0 (> 0 when ``positive``)."""
    if isinstance(value, Tensor):
        raise TypeError(f"{owner}: the learning rate must be a Python number or a callable lr(step), got a "
                        f"tensor; for a learning rate computed on the device, pass a callable that computes it "
                        "from the step")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: the learning rate must be a number or a callable lr(step), got "
                        f"{type(value).__name__} {value!r}")
    rate = float(value)
    if positive and not rate > 0:
        raise ValueError(f"{owner}: learning rate must be positive, got {value}")
    if not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"{owner}: the learning rate must be a finite number >= 0, got {value}")
    return rate


def mode_change_error(owner: str, new: str, old: str) -> TypeError:
    """The error for switching between a number and a callable after a traced step."""
    return TypeError(f"{owner}: cannot set the learning rate to {new}: it is {old}, and a traced step "
                     f"(tc.function) has captured the optimizer, computing its learning rate as {old} does. "
                     f"Assign {old} instead, or trace the step anew (a new tc.function) after the change")


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def evaluate(owner: str, fn: Callable[[Tensor], Any], step: Tensor, check: bool) -> Tensor:
    """``fn(step)`` as the learning rate tensor on ``step``'s device, in its dtype.

    With ``check`` (the first step), an eager evaluation runs under a throwaway tracer, so a
    callable that reads a value fails now, as it would inside a traced step, not later; its
    result is the real one (ops run while tracing). Inside a traced step the outer trace checks.
    """
    try:
        if check and dispatch.current_tracer() is None:
            with Tracer(Graph("learning rate")):
                value = fn(step)
        else:
            value = fn(step)
    except TraceError as exc:
        raise TypeError(
            f"{owner}: the learning-rate callable {_describe(fn)} must compute its result with tensor "
            f"operations on the step it is given (a 0-d {step.dtype} tensor on {step.device}: the number of "
            "steps taken before this one), such as *, //, tc.cos, tc.minimum or tc.where, because inside a "
            f"traced step it runs in the graph, on the device. It did what a graph cannot capture: {exc}") from exc
    return _as_rate(owner, fn, value, step)


def _as_rate(owner: str, fn: Callable[..., Any], value: Any, step: Tensor) -> Tensor:
    """The callable's result as a one-element tensor of the step's dtype, on its device."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return asarray(float(value), dtype=step.dtype, device=step.device)  # a constant (uploaded each step)
    if not isinstance(value, Tensor):
        raise TypeError(f"{owner}: the learning-rate callable {_describe(fn)} returned {type(value).__name__} "
                        f"{value!r}; it must return a 0-d tensor (or a number)")
    if value.size != 1:
        raise ValueError(f"{owner}: the learning-rate callable {_describe(fn)} returned a tensor of shape "
                         f"{value.shape}; it must return one number (a 0-d tensor)")
    if value.dtype.kind not in "fiu":
        raise TypeError(f"{owner}: the learning-rate callable {_describe(fn)} returned a {value.dtype} tensor; "
                        "it must return a real number")
    if value.device != step.device:
        value = value.to_device(step.device)
    return value if value.dtype == step.dtype else astype(value, step.dtype)
