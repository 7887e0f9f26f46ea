"""Gradient utilities: ``global_norm`` and ``clip_grad_norm`` (TensorFlow's ``clip_by_global_norm``).

tensorcore's gradients come back from ``GradientTape.gradient`` as a list rather than living on
the parameters, so clipping takes that list and returns a new one, as TensorFlow does:

    grads = tape.gradient(loss, model.parameters())
    grads, norm = tc.nn.utils.clip_grad_norm(grads, max_norm=1.0)
    opt.step(grads)

The norm costs one ``norm_partial`` op per device (and dtype): it reads all of that device's
gradients in one pass and writes one 0-d partial. The partials are combined on the first
gradient's device, and the scale ``min(1, max_norm / (norm + eps))`` is computed there too:
nothing is read back to the host, so clipping works inside ``tc.function``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorcore.device import Device
from tensorcore.errors import OpError
from tensorcore.ops.arithmetic import add, divide, maximum, minimum, multiply, subtract
from tensorcore.ops.arithmetic import pow as _pow
from tensorcore.ops.creation import zeros
from tensorcore.ops.global_norm import check_norm_type, norm_partial
from tensorcore.ops.logic import astype
from tensorcore.ops.math import sqrt
from tensorcore.tensor import Tensor


def _tensors(what: str, tensors: Any) -> list[Any]:
    """``tensors`` as a list (None entries kept), each checked to be a float tensor."""
    if isinstance(tensors, Tensor):
        raise OpError(f"{what}: expected a list of tensors (e.g. tape.gradient(loss, params)), got one tensor; "
                      "wrap it in a list")
    try:
        items = list(tensors)
    except TypeError:
        raise OpError(f"{what}: expected a list of tensors, got {type(tensors).__name__}") from None
    for i, t in enumerate(items):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise OpError(f"{what}: entry {i} must be a tensor or None, got {type(t).__name__}")
        if t.dtype.kind != "f":
            raise OpError(f"{what}: entry {i} must be floating point, got {t.dtype}")
    return items


def _partial(present: list[Tensor], norm_type: float) -> Tensor:
    """The combined ``sum |x|**p`` (or ``max |x|``) of ``present`` on the first one's device:
    one ``norm_partial`` per (device, dtype), then the partials summed on that device."""
    groups: dict[tuple[Device, np.dtype], list[Tensor]] = {}
    for t in present:
        groups.setdefault((t.device, t.dtype), []).append(t)
    dtype = np.result_type(*[t.dtype for t in present])
    home = present[0].device
    total = None
    for (_, dt), ts in groups.items():
        part = norm_partial(*ts, norm_type=norm_type)
        part = part if dt == dtype else astype(part, dtype)
        part = part.to_device(home)
        total = part if total is None else maximum(total, part) if norm_type == math.inf else add(total, part)
    return total  # type: ignore[return-value]


def _root(partial: Tensor, norm_type: float) -> Tensor:
    if norm_type == 2.0:
        return sqrt(partial)
    if norm_type in (1.0, math.inf):
        return partial
    return _pow(partial, 1.0 / norm_type)


def global_norm(tensors: Sequence[Tensor | None], norm_type: float = 2.0) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` taken together, as if concatenated into one
    vector (``None`` entries are skipped), as a 0-d tensor on the first tensor's device.

    ``norm_type``: any positive number, or ``math.inf`` for the largest magnitude. One pass per
    device (the ``norm_partial`` op), no host synchronization. TensorFlow's ``tf.linalg.global_norm``.
    """
    norm_type = check_norm_type("global_norm", norm_type)
    present = [t for t in _tensors("global_norm", tensors) if t is not None]
    if not present:
        raise OpError("global_norm: needs at least one tensor (every entry is None)")
    return _root(_partial(present, norm_type), norm_type)


def clip_grad_norm(grads: Sequence[Tensor | None], max_norm: float | Tensor, norm_type: float = 2.0,
                   eps: float = 1e-6, error_if_nonfinite: bool = False) -> tuple[list[Tensor | None], Tensor]:
    """Scale ``grads`` so that their global norm is at most ``max_norm``; return
    ``(clipped_grads, total_norm)``, ``total_norm`` being the norm before clipping.

    Every gradient is multiplied by ``min(1, max_norm / (total_norm + eps))``, computed on the
    device (PyTorch's ``clip_grad_norm_`` rule; TensorFlow's ``clip_by_global_norm`` return
    shape). ``None`` entries stay None; the list keeps its order. ``max_norm`` may be a 0-d
    tensor (a schedule that changes without retracing). Works inside ``tc.function``.

    A non-finite norm (an ``inf`` or ``NaN`` gradient) makes every clipped gradient NaN, as
    TensorFlow does, so the step is visibly poisoned instead of silently zeroed. With
    ``error_if_nonfinite=True`` it raises instead (PyTorch's option); that reads the norm on
    the host, so it waits for the device and cannot be traced.
    """
    norm_type = check_norm_type("clip_grad_norm", norm_type)
    items = _tensors("clip_grad_norm", grads)
    if not isinstance(max_norm, Tensor) and (
            isinstance(max_norm, bool) or not isinstance(max_norm, (int, float, np.integer, np.floating))
            or not max_norm >= 0 or math.isinf(max_norm)):
        raise OpError(f"clip_grad_norm: max_norm must be a finite number >= 0 (or a 0-d tensor), got {max_norm!r}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise OpError(f"clip_grad_norm: eps must be a number >= 0, got {eps!r}")
    present = [g for g in items if g is not None]
    if not present:
        return items, zeros(())  # PyTorch returns a zero norm when there is nothing to clip
    norm = _root(_partial(present, norm_type), norm_type)
    if error_if_nonfinite and not math.isfinite(float(norm.numpy())):
        raise FloatingPointError(
            f"clip_grad_norm: the total norm of order {norm_type} of the gradients is {float(norm.numpy())}; "
            "pass error_if_nonfinite=False to clip anyway (the clipped gradients are then NaN)")
    coef = minimum(divide(max_norm, add(norm, float(eps))), 1.0)
    # norm - norm is 0 for a finite norm and NaN for inf or NaN: the coefficient (and so every
    # clipped gradient) becomes NaN, on the device, with no branch on the host. (On cpu NumPy
    # would warn about inf - inf: the NaN is the point here.)
    with np.errstate(invalid="ignore"):
        coef = add(coef, subtract(norm, norm))
    scales: dict[tuple[Device, np.dtype], Tensor] = {}
    clipped: list[Tensor | None] = []
    for g in items:
        if g is None:
            clipped.append(None)
            continue
        key = (g.device, g.dtype)
        if key not in scales:
            scale = coef if coef.dtype == g.dtype else astype(coef, g.dtype)
            scales[key] = scale.to_device(g.device)
        clipped.append(multiply(g, scales[key]))
    return clipped, norm


__all__ = ["clip_grad_norm", "global_norm"]
