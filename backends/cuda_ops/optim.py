"""CUDA launchers of the fused optimizer steps (``kernels/cuda/optim.cu``): ``sgd_step``,
``adam_schedule`` and ``adam_step``, in place, one kernel per step, no host wait.

Covered: float32/float64 parameters whose gradient and state arrays have the same dtype and
shape, with contiguous parameter and state that share no memory with each other. A strided or
aliasing gradient is first copied (it is only read). Anything else (a scalar gradient, a
strided parameter) raises ``KernelUnsupported`` before anything is written; the update then
runs on host copies and is written back (the in-place fallback).

Every kernel reads the launching thread's error record (``CUDADevice.error_guard``) and
writes nothing while it holds an error an earlier kernel of this thread found (a label out
of range): a step after a bad batch changes no parameter, state or step counter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tensorcore.backends.cuda_ops._common import FLOATS, defines, grid_1d, i64, is_array, is_contiguous
from tensorcore.backends.cuda_ops.movement_copy import copy_of, fill, overlaps

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


def _scalar_input(dev: Any, value: Any, what: str) -> Any:
    """The learning rate or step counter: a contiguous one-element float64 device array (the
    optimizers pass device scalars; a Python number is written by the fill kernel)."""
    if not is_array(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{what} must be one real number, got {type(value).__name__}")
        out = dev.empty((), np.float64)
        fill(dev, out, float(value))  # the value travels as a kernel argument
        return out
    if value.size != 1:
        raise ValueError(f"{what} must be one real number (a 0-d or 1-element tensor), got shape {tuple(value.shape)}")
    if value.dtype != np.float64:
        raise KernelUnsupported(f"{what} of dtype {value.dtype} (the CUDA kernels read float64)")
    return value


def _lr_and_step(dev: Any, lr: Any, step: Any) -> tuple:
    """Kernel arguments (lr, step, has_step); without a counter the lr array stands in, unwritten."""
    lr = _scalar_input(dev, lr, "the learning rate")
    if step is None:
        return lr, lr, np.int32(0)
    if not is_array(step):
        raise KernelUnsupported("a step counter that is not a device array")
    return lr, _scalar_input(dev, step, "the step counter"), np.int32(1)


def sgd_step(dev: Any, param: Any, grad: Any, velocity: Any, lr: Any, step: Any = None, *, momentum: float,
             nesterov: bool, weight_decay: float) -> None:
    """One fused SGD step (weight decay, momentum, Nesterov), as ``_sgd_step``: the learning rate
    is read from the device scalar ``lr``; ``step``, if given, is advanced by one."""
    t, grad = _check(dev, "sgd_step", param, grad, [] if velocity is None else [velocity])
    n = param.size
    if n == 0 and step is not None:
        raise KernelUnsupported("counting a step on an empty parameter")
    scalars = _lr_and_step(dev, lr, step)
    if n == 0:
        return
    args = (param, grad, velocity if velocity is not None else param, np.int32(velocity is not None), *scalars,
            t.type(momentum), np.int32(bool(nesterov)), t.type(weight_decay), i64(n), dev.error_guard())
    dev.launch(SOURCE, "sgd_step", defines(t), grid_1d(dev, n), (256,), args)


def adam_schedule(dev: Any, schedule: Any, lr: Any, step: Any = None, *, beta1: float, beta2: float,
                  eps: float) -> None:
    """Advance Adam's bias correction by one step (one thread), as ``_adam_schedule``; the
    learning rate is read from the device scalar ``lr``, and ``step``, if given, is advanced."""
    _check_schedule(schedule)
    scalars = _lr_and_step(dev, lr, step)
    dev.launch(SOURCE, "adam_schedule", defines(np.dtype(np.float64)), (1,), (1,),
               (schedule, *scalars, np.float64(beta1), np.float64(beta2), np.float64(eps), dev.error_guard()))


def _check_schedule(schedule: Any) -> None:
    if not is_array(schedule) or tuple(schedule.shape) != (4,):
        raise ValueError(f"Adam's schedule must be an array of 4 elements, got {getattr(schedule, 'shape', schedule)}")
    if schedule.dtype != np.float64 or not is_contiguous(schedule):
        raise KernelUnsupported("Adam's schedule on CUDA is a contiguous float64 array")


def adam_step(dev: Any, param: Any, grad: Any, m: Any, v: Any, schedule: Any, lr: Any, *, beta1: float,
              beta2: float, weight_decay: float, decoupled: bool) -> None:
    """One fused Adam/AdamW step, as ``_adam_step``: the bias-corrected step size comes from
    the schedule (float64), AdamW's decay from the device scalar ``lr``."""
    _check_schedule(schedule)
    lr, _, _ = _lr_and_step(dev, lr, None)
    t, grad = _check(dev, "adam_step", param, grad, [m, v])
    n = param.size
    if n == 0:
        return
    mode = 0 if not weight_decay else (1 if decoupled else 2)
    args = (param, grad, m, v, schedule, lr, np.int32(mode), t.type(weight_decay), np.float64(weight_decay),
            t.type(beta1), t.type(1.0 - beta1), t.type(beta2), t.type(1.0 - beta2), i64(n), dev.error_guard())
    dev.launch(SOURCE, "adam_step", defines(t), grid_1d(dev, n), (256,), args)


KERNELS: dict = {"sgd_step": sgd_step, "adam_schedule": adam_schedule, "adam_step": adam_step}
