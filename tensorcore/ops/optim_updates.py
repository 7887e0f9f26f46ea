"""In-place update ops: variable assignment and fused optimizer steps.

Their kernels write into their first argument. Each validates before writing, so a failed
update leaves the variable as it was. Backends register fused kernels for these names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.ops.dense import _linear_backward_weight_ref
from tensorcore.ops.registry import Op, define


def _assign(dst: np.ndarray, src: Any) -> None:
    np.copyto(dst, src)


def _assign_add(dst: np.ndarray, src: Any) -> None:
    np.add(dst, src, out=dst)


def _assign_sub(dst: np.ndarray, src: Any) -> None:
    np.subtract(dst, src, out=dst)


_UPDATES = {"assign": _assign, "assign_add": _assign_add, "assign_sub": _assign_sub}


def check_scalar(name: str, dtype: np.dtype, value: Any) -> None:
    """Raise what the reference of update ``name`` raises for a scalar ``value`` into a ``dtype``
    target: NumPy's same-kind rule refuses a float into an integer tensor or an int into a bool
    one, and an int out of the dtype's range. For device kernels that cast the scalar into the
    target's dtype themselves (C's way, which takes all of these): called before any write."""
    if isinstance(value, (int, float, complex, np.generic)):  # bool is an int
        _UPDATES[name](np.zeros((), dtype), value)  # NumPy's own check, on a scratch element


def _rate(lr: Any) -> float:
    """The learning rate held by ``lr`` (a one-element array, or a Python number), as a Python
    float: NumPy then rounds it into each array's dtype, as it did the former float attribute."""
    if isinstance(lr, (np.ndarray, np.generic)) and lr.size == 1 and lr.dtype.kind in "fiu":
        return float(lr.item())
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        return float(lr)
    raise ValueError(f"the learning rate must be one real number (a 0-d or 1-element tensor), got "
                     f"{getattr(lr, 'dtype', type(lr).__name__)} {getattr(lr, 'shape', '')}")


def _check_step(step: Any) -> None:
    """The optimizer's step counter: a one-element float array (or None: not counted here)."""
    if step is not None and (getattr(step, "size", None) != 1 or getattr(step, "dtype", None) not in (np.float32, np.float64)):
        raise ValueError(f"the step counter must be a 0-d or 1-element float32 or float64 array, got "
                         f"{getattr(step, 'dtype', type(step).__name__)} {getattr(step, 'shape', '')}")


def _check_shapes(param: np.ndarray, grad: Any, *state: Any) -> None:
    """Before anything is written: the gradient and the state broadcast into the parameter's
    shape and every state's (which must be that shape), so no update below raises half-way."""
    shape = param.shape
    if getattr(grad, "shape", None) == shape:  # the usual case, without np.broadcast_shapes (half of a small update's cost)
        for s in state:  # a loop, not all() over a generator: a microsecond less per update
            if s is not None and getattr(s, "shape", None) != shape:
                break
        else:
            return
    shapes = [shape, np.shape(grad)] + [np.shape(s) for s in state if s is not None]
    try:
        fits = np.broadcast_shapes(*shapes) == np.shape(param) and all(np.shape(s) == np.shape(param)
                                                                       for s in state if s is not None)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"the gradient of shape {np.shape(grad)} and the optimizer state of shapes "
                         f"{[np.shape(s) for s in state if s is not None]} do not fit the parameter of shape "
                         f"{np.shape(param)}")


def _count(step: Any) -> None:
    if step is not None:  # one element (``_check_step``)
        # 0.5 us, against 3 us for np.add on a 0-d array, with the same result: a float32 count
        # and its successor are exact in a Python float, and a float64 one rounds as np.add does.
        step.fill(step.item() + 1)


def _sgd_step(param: np.ndarray, grad: np.ndarray, velocity: Any, lr: Any, step: Any = None, *, momentum: float,
              nesterov: bool, weight_decay: float) -> None:
    """One SGD step; ``velocity`` is the momentum buffer (None without momentum), ``lr`` the
    device scalar holding the learning rate, ``step`` the optimizer's step counter, advanced by
    one (None: another parameter's update counts this step)."""
    rate = _rate(lr)
    _check_step(step)
    _check_shapes(param, grad, velocity)
    if weight_decay:
        grad = grad + weight_decay * param
    if velocity is not None:
        velocity *= momentum
        velocity += grad
        grad = grad + momentum * velocity if nesterov else velocity
    param -= rate * grad
    _count(step)


def _linear_weight_sgd_step(param: np.ndarray, g: np.ndarray, x: np.ndarray, lr: Any, step: Any = None) -> None:
    """``linear_backward_weight(g, x)`` and a plain SGD step of ``param`` along it, in one op:
    ``param -= rate * (g.T @ x)`` over all leading dimensions, ``step`` advanced if given. The
    graph rewrite of ``graph/rewrite_sgd_gemm.py`` makes it from the two ops, and this reference
    runs their two references, so ``cpu`` gives their bits; a device kernel applies the update
    as its GEMM stores each tile, without writing the gradient."""
    grad = _linear_backward_weight_ref(g, x)  # before any write: a bad shape raises here
    _sgd_step(param, grad, None, lr, step, momentum=0.0, nesterov=False, weight_decay=0.0)


def _check_schedule(schedule: Any) -> None:
    """Validate before anything is written (the in-place ops' rule)."""
    shape, dtype = getattr(schedule, "shape", None), getattr(schedule, "dtype", None)
    if shape != (4,) or dtype not in (np.float32, np.float64):
        raise ValueError(f"Adam's schedule must be a float32 or float64 array of 4 elements, got {dtype} {shape}")


def _adam_schedule(schedule: np.ndarray, lr: Any, step: Any = None, *, beta1: float, beta2: float, eps: float) -> None:
    """Advance Adam's bias correction by one step, in place (and the step counter, if given).

    ``schedule`` holds ``[beta1**t, beta2**t, step_size, eps_hat]`` (it starts as
    ``[1, 1, 0, 0]``). Keeping it in a tensor rather than a Python step count lets a traced
    graph advance it on every run, as TensorFlow's Adam keeps ``beta1_power``. The learning
    rate is read from ``lr`` on every run for the same reason.
    """
    _check_schedule(schedule)
    rate = _rate(lr)
    _check_step(step)
    schedule[0] *= beta1
    schedule[1] *= beta2
    correction = np.sqrt(1.0 - schedule[1])
    schedule[2] = rate * correction / (1.0 - schedule[0])
    schedule[3] = eps * correction
    _count(step)


def _adam_step(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, schedule: np.ndarray, lr: Any, *,
               beta1: float, beta2: float, weight_decay: float, decoupled: bool) -> None:
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) step; the bias-corrected
    step size and epsilon come from ``schedule`` (see ``_adam_schedule``), in its dtype; ``lr``
    (a device scalar) scales AdamW's decoupled decay."""
    _check_schedule(schedule)
    rate = _rate(lr)
    _check_shapes(param, grad, m, v)
    if weight_decay and decoupled:
        param *= 1.0 - rate * weight_decay
    elif weight_decay:
        grad = grad + weight_decay * param
    m *= beta1
    m += (1.0 - beta1) * grad
    v *= beta2
    v += (1.0 - beta2) * np.square(grad)
    param -= schedule[2] * m / (np.sqrt(v) + schedule[3])


ASSIGN = define(Op("assign", _assign, doc="dst[...] = src"))
ASSIGN_ADD = define(Op("assign_add", _assign_add, doc="dst += src"))
ASSIGN_SUB = define(Op("assign_sub", _assign_sub, doc="dst -= src"))
# Inputs after the target: sgd_step (grad, velocity, lr, step), adam_schedule (lr, step),
# adam_step (grad, m, v, schedule, lr). ``mutates`` names the state each one writes.
SGD_STEP = define(Op("sgd_step", _sgd_step, mutates=(1, 3), doc="Fused SGD step with momentum, Nesterov and weight decay."))
# linear_weight_sgd_step (g, x, lr, step): writes the step counter too
LINEAR_WEIGHT_SGD_STEP = define(Op("linear_weight_sgd_step", _linear_weight_sgd_step, mutates=(3,),
                                   doc="linear's weight gradient and its plain SGD step in one op."))
ADAM_SCHEDULE = define(Op("adam_schedule", _adam_schedule, mutates=(1,), doc="Advance Adam's bias correction by one step."))
ADAM_STEP = define(Op("adam_step", _adam_step, mutates=(1, 2), doc="Fused Adam/AdamW step."))
