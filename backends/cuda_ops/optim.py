"""CUDA launchers of the fused optimizer steps (``kernels/cuda/optim.cu``): ``sgd_step``,
``adam_schedule`` and ``adam_step``, in place, one kernel per step, no host wait.

Covered: float32/float64 parameters whose gradient and state arrays have the same dtype and
shape, with contiguous parameter and state that share no memory with each other. A strided or
aliasing gradient is first copied (it is only read). Anything else (a scalar gradient, a
strided parameter) raises ``KernelUnsupported`` before anything is written; the update then
runs on host copies and is written back (the in-place fallback).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import FLOATS, defines, grid_1d, i64, is_array, is_contiguous
from tensorcore.backends.cuda_ops.movement_copy import copy_of, overlaps

from tensorcore.errors import KernelUnsupported

SOURCE = "optim.cu"

#: (source, defines) the launchers build: compiled by tests/test_cuda_compile.py.
VARIANTS = [(SOURCE, defines(t)) for t in FLOATS]


def _check(dev: Any, op: str, param: Any, grad: Any, states: list[Any]) -> tuple[np.dtype, Any]:
    """(dtype, the gradient as a contiguous array): a strided gradient (a view, e.g. the
    gradient of a transpose) is gathered into a copy, which the step only reads; the parameter
    and its state are written in place, so they must be contiguous already."""
    arrays = [param, grad] + states
    if not all(is_array(a) for a in arrays):
        raise KernelUnsupported(f"{op}: gradient and state must be device arrays")
    dtype = np.dtype(param.dtype)
    if dtype not in FLOATS:
        raise KernelUnsupported(f"{op} on {dtype}")
    for a in arrays:
        if a.dtype != dtype or tuple(a.shape) != tuple(param.shape):
            raise KernelUnsupported(f"{op}: gradient and state must have the parameter's dtype and shape")
    if not all(is_contiguous(a) for a in [param] + states):
        raise KernelUnsupported(f"{op}: parameter and state must be contiguous (they are written in place)")
    written = [param] + states
    if any(overlaps(a, b) for i, a in enumerate(written) for b in written[i + 1:]):
        raise KernelUnsupported(f"{op}: parameter and state share memory")
    if not is_contiguous(grad) or any(overlaps(grad, a) for a in written):
        grad = copy_of(dev, grad)  # read-only input: a dense copy that no write of this step can change
    return dtype, grad


def sgd_step(dev: Any, param: Any, grad: Any, velocity: Any, *, lr: float, momentum: float, nesterov: bool,
             weight_decay: float) -> None:
    """One fused SGD step (weight decay, momentum, Nesterov), as ``_sgd_step``."""
    t, grad = _check(dev, "sgd_step", param, grad, [] if velocity is None else [velocity])
    n = param.size
    if n == 0:
        return
    args = (param, grad, velocity if velocity is not None else param, np.int32(velocity is not None), t.type(lr),
            t.type(momentum), np.int32(bool(nesterov)), t.type(weight_decay), i64(n))
    dev.launch(SOURCE, "sgd_step", defines(t), grid_1d(dev, n), (256,), args)


def adam_schedule(dev: Any, schedule: Any, *, lr: float, beta1: float, beta2: float, eps: float) -> None:
    """Advance Adam's bias correction by one step (one thread), as ``_adam_schedule``."""
    _check_schedule(schedule)
    dev.launch(SOURCE, "adam_schedule", defines(np.dtype(np.float64)), (1,), (1,),
               (schedule, np.float64(lr), np.float64(beta1), np.float64(beta2), np.float64(eps)))


def _check_schedule(schedule: Any) -> None:
    if not is_array(schedule) or tuple(schedule.shape) != (4,):
        raise ValueError(f"Adam's schedule must be an array of 4 elements, got {getattr(schedule, 'shape', schedule)}")
    if schedule.dtype != np.float64 or not is_contiguous(schedule):
        raise KernelUnsupported("Adam's schedule on CUDA is a contiguous float64 array")


def adam_step(dev: Any, param: Any, grad: Any, m: Any, v: Any, schedule: Any, *, lr: float, beta1: float,
              beta2: float, weight_decay: float, decoupled: bool) -> None:
    """One fused Adam/AdamW step, as ``_adam_step``: the bias-corrected step size comes from
    the schedule (float64)."""
    _check_schedule(schedule)
    t, grad = _check(dev, "adam_step", param, grad, [m, v])
    n = param.size
    if n == 0:
        return
    mode = 0 if not weight_decay else (1 if decoupled else 2)
    args = (param, grad, m, v, schedule, np.int32(mode), t.type(weight_decay), t.type(1.0 - lr * weight_decay),
            t.type(beta1), t.type(1.0 - beta1), t.type(beta2), t.type(1.0 - beta2), i64(n))
    dev.launch(SOURCE, "adam_step", defines(t), grid_1d(dev, n), (256,), args)


KERNELS: dict = {"sgd_step": sgd_step, "adam_schedule": adam_schedule, "adam_step": adam_step}
