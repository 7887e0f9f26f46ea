"""Axis argument normalization shared by reductions and manipulation ops."""

from __future__ import annotations

from typing import Any

from tensorcore.errors import OpError


def normalize_axis(op: str, axis: int, ndim: int) -> int:
    """One axis as a non-negative int; raise naming the valid range."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise OpError(f"{op}: axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        valid = f"expected {-ndim} <= axis < {ndim}" if ndim else "a 0-D tensor has no axes"
        raise OpError(f"{op}: axis {axis} is out of range for a {ndim}-D tensor; {valid}")
    return axis % ndim


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """``None``, an int or a tuple of ints as a sorted tuple of distinct non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and 0 <= axis < ndim:  # the common case, without the general checks
        return (axis,)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = tuple(sorted({normalize_axis(op, a, ndim) for a in axes}))
    if len(out) != len(axes):
        raise OpError(f"{op}: repeated axis in {axis!r}")
    return out


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> tuple[int, ...]:
    """The shape left after reducing ``axes``."""
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)
