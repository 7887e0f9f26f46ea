"""More shape manipulation: flip, roll, tile, repeat, moveaxis, unstack, broadcast_shapes, diff.

Re-exported by :mod:`tensorcore.ops.manipulation`. Each op's gradient is written with
tensorcore ops; ``moveaxis``, ``unstack`` and ``diff`` are compositions of other ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops import manipulation as _m
from tensorcore.ops._axes import normalize_axes, normalize_axis
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _tensor(name: str, x: Any) -> None:
    if not isinstance(x, Tensor):
        raise OpError(f"{name}: expected a tensor, got {type(x).__name__}")


def _axis(name: str, axis: int, ndim: int) -> int:
    """One axis of an ``ndim``-D tensor (a 0-d tensor has none), as a non-negative int."""
    if ndim == 0:
        raise OpError(f"{name}: axis {axis!r} is out of range for a 0-d tensor, which has no axes")
    return normalize_axis(name, axis, ndim)


def _int_tuple(name: str, what: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        values: tuple = (value,)
    elif isinstance(value, (tuple, list)):
        values = tuple(value)
    else:
        values = (value,)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise OpError(f"{name}: {what} must be an int or a tuple of ints, got {value!r}")
    return tuple(int(v) for v in values)


# --- flip ---------------------------------------------------------------------------------

_FLIP = define(Op("flip", lambda x, axis: np.flip(x, axis), infer=lambda x, axis: x,
                  grad=lambda ctx, g: (apply(_FLIP, (g,), ctx.attrs),), doc="Reverse the order along axes.", complex_grad=True))


def flip(x: Tensor, /, *, axis: Any = None) -> Tensor:
    """``x`` with the order of elements reversed along ``axis`` (all axes if None)."""
    _tensor("flip", x)
    if x.ndim == 0 and axis is not None and axis != ():  # an empty tuple names no axis: valid for any rank
        _axis("flip", axis, 0)
    return apply(_FLIP, (x,), {"axis": normalize_axes("flip", axis, x.ndim)})


# --- roll ---------------------------------------------------------------------------------


def _roll_grad(ctx: Any, g: Tensor) -> tuple:
    shift = tuple(-s for s in ctx.attrs["shift"])
    return (apply(_ROLL, (g,), {"shift": shift, "axis": ctx.attrs["axis"]}),)


_ROLL = define(Op("roll", lambda x, shift, axis: np.roll(x, shift, axis), infer=lambda x, shift, axis: x,
                  grad=_roll_grad, doc="Shift elements cyclically along axes.", complex_grad=True))


def roll(x: Tensor, /, shift: Any, *, axis: Any = None) -> Tensor:
    """``x`` with elements shifted cyclically by ``shift`` along ``axis`` (flattened if None)."""
    _tensor("roll", x)
    shifts = _int_tuple("roll", "shift", shift)
    if axis is None:
        if len(shifts) != 1:
            raise OpError(f"roll: with axis=None shift must be one int, got {shift!r}")
        flat = apply(_ROLL, (_m.reshape(x, (-1,)),), {"shift": shifts, "axis": (0,)})
        return _m.reshape(flat, x.shape)
    axes = tuple(_axis("roll", a, x.ndim) for a in _int_tuple("roll", "axis", axis))
    if len(shifts) == 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise OpError(f"roll: shift {shift!r} and axis {axis!r} must have the same length for a tensor of shape {x.shape}")
    return apply(_ROLL, (x,), {"shift": shifts, "axis": axes})


# --- tile ---------------------------------------------------------------------------------


def _tile_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.reductions import sum as sum_

    x, reps = ctx.inputs[0], ctx.attrs["repetitions"]
    d = max(len(reps), x.ndim)
    shape = (1,) * (d - x.ndim) + x.shape
    reps = (1,) * (d - len(reps)) + reps
    split = tuple(v for pair in zip(reps, shape) for v in pair)  # (r0, n0, r1, n1, ...)
    return (_m.reshape(sum_(_m.reshape(g, split), axis=tuple(range(0, 2 * d, 2))), x.shape),)


def _tile_infer(x: Spec, repetitions: tuple[int, ...]) -> Spec:
    d = max(len(repetitions), len(x.shape))
    shape = (1,) * (d - len(x.shape)) + tuple(x.shape)
    reps = (1,) * (d - len(repetitions)) + tuple(repetitions)
    return Spec(tuple(n * r for n, r in zip(shape, reps)), x.dtype)


_TILE = define(Op("tile", lambda x, repetitions: np.tile(x, repetitions), infer=_tile_infer, grad=_tile_grad,
                  doc="Repeat the whole tensor along each axis."))


def tile(x: Tensor, repetitions: Any, /) -> Tensor:
    """``x`` repeated ``repetitions[i]`` times along axis i (shorter of the two is padded with 1s in front)."""
    _tensor("tile", x)
    reps = _int_tuple("tile", "repetitions", repetitions)
    if any(r < 0 for r in reps):
        raise OpError(f"tile: repetitions must be non-negative, got {reps} for a tensor of shape {x.shape}")
    return apply(_TILE, (x,), {"repetitions": reps})


# --- repeat -------------------------------------------------------------------------------


def _repeat_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.indexing import scatter_add

    x, repeats, axis = ctx.inputs[0], ctx.attrs["repeats"], ctx.attrs["axis"]
    source = np.repeat(np.arange(x.shape[axis]), repeats)  # the input index of each output slice
    return (scatter_add(g, x.shape, (slice(None),) * axis + (source,)),)


def _repeat_infer(x: Spec, repeats: Any, axis: int) -> Spec:
    n = x.shape[axis]
    total = n * repeats if isinstance(repeats, int) else int(np.sum(np.broadcast_to(repeats, (n,))))
    return Spec(x.shape[:axis] + (total,) + x.shape[axis + 1:], x.dtype)


_REPEAT = define(Op("repeat", lambda x, repeats, axis: np.repeat(x, repeats, axis), infer=_repeat_infer,
                    grad=_repeat_grad, doc="Repeat each element along an axis."))


def repeat(x: Tensor, repeats: Any, /, *, axis: int | None = None) -> Tensor:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (of the flattened ``x`` if None).

    ``repeats`` is an int or a 1-D integer tensor with one count per element along ``axis``.
    """
    _tensor("repeat", x)
    if axis is None:
        x, axis = _m.reshape(x, (-1,)), 0
    axis = _axis("repeat", axis, x.ndim)
    n = x.shape[axis]
    if isinstance(repeats, Tensor):
        if repeats.dtype.kind not in "iu" or repeats.ndim > 1:
            raise OpError(f"repeat: repeats must be an int or a 1-D integer tensor, got {repeats.dtype}{list(repeats.shape)}")
        counts = np.asarray(repeats.numpy(), dtype=np.int64).reshape(-1)  # the output shape depends on them
        if counts.shape[0] not in (1, n):
            raise OpError(
                f"repeat: repeats has {counts.shape[0]} counts, but axis {axis} of shape {x.shape} has {n} elements; "
                "expected one count per element (or a single count)"
            )
        if (counts < 0).any():
            raise OpError(f"repeat: repeats must be non-negative, got {counts.tolist()}")
        reps: Any = int(counts[0]) if counts.shape[0] == 1 else counts
    elif isinstance(repeats, (int, np.integer)) and not isinstance(repeats, bool):
        if repeats < 0:
            raise OpError(f"repeat: repeats must be non-negative, got {repeats}")
        reps = int(repeats)
    else:
        raise OpError(f"repeat: repeats must be an int or a 1-D integer tensor, got {type(repeats).__name__}")
    return apply(_REPEAT, (x,), {"repeats": reps, "axis": axis})


# --- compositions -------------------------------------------------------------------------


def moveaxis(x: Tensor, source: Any, destination: Any, /) -> Tensor:
    """``x`` with axes ``source`` moved to positions ``destination`` (the others keep their order)."""
    _tensor("moveaxis", x)
    src = [_axis("moveaxis", a, x.ndim) for a in _int_tuple("moveaxis", "source", source)]
    dst = [_axis("moveaxis", a, x.ndim) for a in _int_tuple("moveaxis", "destination", destination)]
    if len(src) != len(dst):
        raise OpError(f"moveaxis: source {source!r} and destination {destination!r} must have the same number of axes")
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise OpError(f"moveaxis: repeated axis in source {source!r} or destination {destination!r}")
    rest = iter(a for a in range(x.ndim) if a not in src)
    placed = dict(zip(dst, src))
    order = tuple(placed[i] if i in placed else next(rest) for i in range(x.ndim))
    return _m.permute_dims(x, order)


def unstack(x: Tensor, /, *, axis: int = 0) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``axis``, as a tuple of tensors with that axis removed."""
    from tensorcore.ops.indexing import getitem

    _tensor("unstack", x)
    if x.ndim == 0:
        raise OpError("unstack: x must have at least one dimension, got a 0-d tensor")
    axis = normalize_axis("unstack", axis, x.ndim)
    lead = (slice(None),) * axis
    return tuple(getitem(x, lead + (i,)) for i in range(x.shape[axis]))


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The shape that tensors of ``shapes`` broadcast to."""
    try:
        return tuple(int(n) for n in np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise OpError(
            f"broadcast_shapes: shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together; "
            "each dimension must be equal, or 1, or missing (counted from the right)"
        ) from None


def diff(x: Tensor, /, *, axis: int = -1, n: int = 1, prepend: Tensor | None = None,
         append: Tensor | None = None) -> Tensor:
    """The ``n``-th forward difference ``x[i + 1] - x[i]`` along ``axis``."""
    from tensorcore.ops.arithmetic import subtract
    from tensorcore.ops.indexing import getitem

    _tensor("diff", x)
    if x.ndim == 0:
        raise OpError("diff: x must have at least one dimension, got a 0-d tensor")
    if not isinstance(n, int) or n < 0:
        raise OpError(f"diff: n must be a non-negative int, got {n!r}")
    if x.dtype.kind == "b":
        raise OpError(f"diff: x must have a numeric dtype, got {x.dtype}{list(x.shape)}")
    axis = normalize_axis("diff", axis, x.ndim)
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        for p in parts:
            if p.ndim != x.ndim or any(a != b for d, (a, b) in enumerate(zip(p.shape, x.shape)) if d != axis):
                raise OpError(f"diff: prepend/append of shape {p.shape} does not match x of shape {x.shape} outside axis {axis}")
        x = _m.concat(parts, axis=axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        if x.shape[axis] == 0:
            break
        x = subtract(getitem(x, lead + (slice(1, None),)), getitem(x, lead + (slice(None, -1),)))
    return x


__all__ = ["flip", "roll", "tile", "repeat", "moveaxis", "unstack", "broadcast_shapes", "diff"]
