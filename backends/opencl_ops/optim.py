"""In-place updates on OpenCL: assign, assign_add, assign_sub, the fused SGD and Adam/AdamW
steps, and batch norm's running statistics. One kernel per update, no host wait.

Each launcher validates everything (shapes, dtypes, a writable target) before it enqueues a
write, so a failed update leaves every buffer as it was, and declines (``KernelUnsupported``,
the op then runs on cpu) what it does not handle: dtypes other than float32/float64 for the
optimizer steps, overlapping state buffers.

Every update kernel also reads the launching thread's error record (``CLDevice.error_guard``)
and writes nothing while it holds an error that an earlier kernel of this thread found (a
label out of range): a step after a bad batch changes no parameter, state or step counter,
and the host never waits to know it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from tensorcore.backends.opencl import MAX_DIMS, CLArray, CLDevice, contiguous_strides
from tensorcore.backends.opencl_ops._common import CTYPES, global_size, long8
from tensorcore.backends.opencl_ops.movement_copy import (
    broadcast_strides,
    coalesce,
    copy_of,
    copy_view,
    fill_view,
    host_array,
    run,
)

from tensorcore.errors import KernelUnsupported, OpError
from tensorcore.ops.optim_updates import check_scalar
from tensorcore.strides import broadcast_strides as shared_broadcast_strides

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _writable(a: CLArray, what: str) -> None:
    if any(s == 0 and n > 1 for n, s in zip(a.shape, a.strides)):
        raise ValueError(f"{what} is read-only (a broadcast view)")


def _operand(dev: CLDevice, value: Any, target: CLArray, written: list[CLArray], what: str) -> CLArray:
    """``value`` as a device array of ``target``'s dtype that no write of this op can change
    under the kernel: a Python scalar is uploaded, an alias of a written buffer copied."""
    if not isinstance(value, CLArray):
        value = host_array(dev, value, target.dtype)
    if value.dtype != target.dtype:
        raise KernelUnsupported(f"{what} of dtype {value.dtype} for a {target.dtype} target")
    broadcast_strides(value, target.shape, what)  # raises before anything is written
    for w in written:
        if value.buf is not None and value.buf is w.buf and \
                (value.shape, value.strides, value.offset) != (w.shape, w.strides, w.offset):
            return copy_of(value)  # elementwise updates are safe only on the very same element
    return value


def _launch(dev: CLDevice, name: str, dtype: np.dtype, arrays: list[CLArray], extra: tuple,
            shape: tuple[int, ...], acc: str | None = None, more: tuple = ()) -> None:
    """Enqueue optim.cl's ``name`` over ``shape``; every array passes (buffer, offset, strides),
    broadcast to ``shape``. The contiguous build is used when every array is contiguous.
    ``acc`` is the kernels' ACC type (default: double wherever the device has it); ``more``,
    further build defines."""
    n = math.prod(shape)
    if n == 0:
        return
    dims, strides, dims8, strided = _geometry(tuple(shape), tuple((a.shape, a.strides) for a in arrays))
    acc = acc or ("double" if dev.fp64 else CTYPES[dtype])
    defines = (("T", CTYPES[dtype]), ("ACC", acc), ("STRIDED", strided),
               ("INTEGER", "1" if dtype.kind != "f" else "0")) + more
    args = [v for a, s in zip(arrays, strides) for v in (a.buf, a.offset, s)]
    run(dev, "optim.cl", name, defines, global_size(n), *args, *extra, dims8, len(dims), n, dev.error_guard())


@functools.lru_cache(maxsize=1024)
def _geometry(shape: tuple[int, ...], layouts: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]) -> tuple:
    """(dims, each array's strides as a long8, dims as a long8, "1" if any array is strided) of
    arrays of ``layouts`` (shape, strides) broadcast to ``shape`` and coalesced. Cached: the
    same layouts come back every step, and working them out was most of an update's host
    time (docs/performance.md, session 14)."""
    dims, merged = coalesce(shape, *(shared_broadcast_strides(s, st, shape) for s, st in layouts))
    if len(dims) > MAX_DIMS:
        raise KernelUnsupported(f"update of a {len(dims)}-D strided layout")
    dense = contiguous_strides(dims)
    return dims, tuple(long8(s, 0) for s in merged), long8(dims, 1), str(int(any(s != dense for s in merged)))


def _scalar(dtype: np.dtype, value: float) -> Any:
    return dtype.type(value)


def assign(dev: CLDevice, dst: CLArray, src: Any) -> None:
    """``np.copyto(dst, src)``: src broadcast; any dtype (bytes are copied)."""
    _writable(dst, "assign target")
    check_scalar("assign", dst.dtype, src)
    if isinstance(src, (int, float, bool, np.generic)) and fill_view(dev, dst, src, dev.error_guard()):
        return
    src = _operand(dev, src, dst, [dst], "value")
    copy_view(dev, dst.dtype, dst.shape, dst.buf, dst.offset, dst.strides, src.buf, src.offset,
              broadcast_strides(src, dst.shape), dev.error_guard())


def _add(dev: CLDevice, dst: CLArray, src: Any, subtract: int) -> None:
    if dst.dtype not in CTYPES or dst.dtype == np.bool_:
        raise KernelUnsupported(f"in-place arithmetic on {dst.dtype}")
    _writable(dst, "target")
    check_scalar("assign_sub" if subtract else "assign_add", dst.dtype, src)
    src = _operand(dev, src, dst, [dst], "value")
    _launch(dev, "update_add", dst.dtype, [dst, src], (subtract,), dst.shape)


def assign_add(dev: CLDevice, dst: CLArray, src: Any) -> None:
    """``dst += src`` in place (numeric dtypes but bool)."""
    _add(dev, dst, src, 0)


def assign_sub(dev: CLDevice, dst: CLArray, src: Any) -> None:
    """``dst -= src`` in place (numeric dtypes but bool)."""
    _add(dev, dst, src, 1)


def _state(param: CLArray, states: list[CLArray]) -> None:
    """Optimizer state must look like the parameter and not share its memory."""
    if param.dtype not in _FLOATS:
        raise KernelUnsupported(f"optimizer step on {param.dtype}")
    for s in [param] + states:
        _writable(s, "optimizer state")
        if s.dtype != param.dtype or tuple(s.shape) != tuple(param.shape):
            raise KernelUnsupported("optimizer state of another dtype or shape than its parameter")
    bufs = [s.buf for s in [param] + states if s.buf is not None]
    if len({id(b) for b in bufs}) != len(bufs):
        raise KernelUnsupported("optimizer state sharing memory with its parameter")


def _acc(dev: CLDevice, dtype: np.dtype) -> np.dtype:
    """The kernels' ACC type: float64 wherever the device has it, else the parameter's type.
    The learning rate and the step counter are device scalars of this type."""
    return np.dtype(np.float64) if dev.fp64 else np.dtype(dtype)


def _scalar_input(dev: CLDevice, value: Any, acc: np.dtype, what: str) -> CLArray:
    """The learning rate or step counter as a one-element device array of type ``acc``. A Python
    number is uploaded (the optimizers pass device scalars, which cost no upload)."""
    if not isinstance(value, CLArray):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{what} must be one real number, got {type(value).__name__}")
        value = host_array(dev, value, acc)
    if math.prod(value.shape) != 1:
        raise ValueError(f"{what} must be one real number (a 0-d or 1-element tensor), got shape {tuple(value.shape)}")
    if value.dtype != acc:
        raise KernelUnsupported(f"{what} of dtype {value.dtype} (this device's kernels read {acc})")
    return value


def _lr_and_step(dev: CLDevice, lr: Any, step: CLArray | None, acc: np.dtype) -> tuple:
    """Kernel arguments (lr buffer, offset, step buffer, offset, has_step); without a step counter
    the lr buffer stands in for it, never written."""
    lr = _scalar_input(dev, lr, acc, "the learning rate")
    if step is None:
        return lr.buf, lr.offset, lr.buf, lr.offset, 0
    if not isinstance(step, CLArray):
        raise KernelUnsupported("a step counter that is not a device array")
    step = _scalar_input(dev, step, acc, "the step counter")
    return lr.buf, lr.offset, step.buf, step.offset, 1


def sgd_step(dev: CLDevice, param: CLArray, grad: Any, velocity: CLArray | None, lr: Any, step: CLArray | None = None,
             *, momentum: float, nesterov: bool, weight_decay: float) -> None:
    """One fused SGD step (weight decay, momentum, Nesterov), as ``_sgd_step``: the learning rate
    is read from the device scalar ``lr``; ``step``, if given, is advanced by one."""
    states = [] if velocity is None else [velocity]
    _state(param, states)
    if step is not None and math.prod(param.shape) == 0:
        raise KernelUnsupported("counting a step on an empty parameter")  # no work item would run
    *scalars, count = _lr_and_step(dev, lr, step, _acc(dev, param.dtype))
    grad = _operand(dev, grad, param, [param] + states, "gradient")
    t = param.dtype
    arrays = [param, grad, velocity if velocity is not None else param]  # unused when there is none
    extra = (int(velocity is not None), *scalars, _scalar(t, momentum), int(bool(nesterov)), _scalar(t, weight_decay))
    _launch(dev, "sgd_step", t, arrays, extra, param.shape, more=(("COUNT", str(count)),))


def count_step(dev: CLDevice, step: Any, step_off: int, acc: np.dtype, guard: Any) -> None:
    """Enqueue the optimizer's step counter (``acc``, at ``step_off`` of buffer ``step``) advanced
    by one, unless ``guard`` (the thread's error record) is set."""
    run(dev, "optim.cl", "count_step", (("T", CTYPES[np.dtype(acc)]), ("ACC", CTYPES[np.dtype(acc)]),
                                        ("STRIDED", "0"), ("INTEGER", "0")), (1,), step, step_off, guard, local=(1,))


def _schedule(dev: CLDevice, schedule: Any) -> str:
    """The C type of Adam's schedule (four contiguous elements; see ``_adam_schedule``)."""
    if not isinstance(schedule, CLArray) or schedule.shape != (4,):
        raise ValueError(f"Adam's schedule must be an array of 4 elements, got {getattr(schedule, 'shape', schedule)}")
    if schedule.strides != (1,):
        raise KernelUnsupported("Adam's schedule is a strided view")
    if schedule.dtype not in _FLOATS or (schedule.dtype == np.float64 and not dev.fp64):
        raise KernelUnsupported(f"Adam's schedule in {schedule.dtype} on this device")
    return CTYPES[schedule.dtype]


def adam_schedule(dev: CLDevice, schedule: CLArray, lr: Any, step: CLArray | None = None, *, beta1: float,
                  beta2: float, eps: float) -> None:
    """Advance Adam's bias correction by one step (one work item), as ``_adam_schedule``; the
    learning rate is read from the device scalar ``lr``, and ``step``, if given, is advanced."""
    acc = _schedule(dev, schedule)
    scalars = _lr_and_step(dev, lr, step, schedule.dtype)
    t = schedule.dtype.type
    run(dev, "optim.cl", "adam_schedule", (("T", acc), ("ACC", acc), ("STRIDED", "0")), (1,),
        schedule.buf, schedule.offset, *scalars, t(beta1), t(beta2), t(eps), dev.error_guard(), local=(1,))


def adam_step(dev: CLDevice, param: CLArray, grad: Any, m: CLArray, v: CLArray, schedule: CLArray, lr: Any, *,
              beta1: float, beta2: float, weight_decay: float, decoupled: bool) -> None:
    """One fused Adam/AdamW step, as ``_adam_step``: the bias-corrected step size comes from
    the schedule, in its type; AdamW's decay from the device scalar ``lr``."""
    _state(param, [m, v])
    acc = _schedule(dev, schedule)
    lr_buf, lr_off, *_ = _lr_and_step(dev, lr, None, schedule.dtype)
    grad = _operand(dev, grad, param, [param, m, v], "gradient")
    t = param.dtype
    mode = 0 if not weight_decay else (1 if decoupled else 2)
    extra = (schedule.buf, schedule.offset, lr_buf, lr_off, mode, _scalar(t, weight_decay),
             schedule.dtype.type(weight_decay), _scalar(t, beta1), _scalar(t, 1.0 - beta1), _scalar(t, beta2),
             _scalar(t, 1.0 - beta2))
    _launch(dev, "adam_step", t, [param, grad, m, v], extra, param.shape, acc)


def batch_norm_update_running(dev: CLDevice, dst: CLArray, src: Any, *, momentum: float, correction: float) -> None:
    """``dst = dst * (1 - momentum) + momentum * correction * src`` in place."""
    if isinstance(src, CLArray) and tuple(src.shape) != tuple(dst.shape):
        raise OpError(f"batch_norm: running statistic of shape {tuple(dst.shape)} cannot take a batch statistic "
                      f"of shape {tuple(src.shape)}")
    if dst.dtype not in _FLOATS:
        raise KernelUnsupported(f"running statistics of dtype {dst.dtype}")
    _writable(dst, "running statistic")
    src = _operand(dev, src, dst, [dst], "batch statistic")
    t = dst.dtype
    _launch(dev, "running_update", t, [dst, src], (_scalar(t, 1.0 - momentum), _scalar(t, momentum * correction)),
            dst.shape)


KERNELS: dict = {
    "assign": assign, "assign_add": assign_add, "assign_sub": assign_sub, "sgd_step": sgd_step,
    "adam_step": adam_step, "adam_schedule": adam_schedule, "batch_norm_update_running": batch_norm_update_running,
}
