"""Searching: ``argmax``, ``argmin``, ``nonzero``, ``searchsorted`` and ``count_nonzero``.

(``where`` lives with the logic ops.) None of these is differentiable: they return indices
or counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axes, normalize_axis, reduced_shape
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_INT64 = np.dtype(np.int64)


def _arg_ref(fn: Any) -> Any:
    def reference(x: Any, axis: int | None, keepdims: bool) -> np.ndarray:
        return np.asarray(fn(x, axis=axis, keepdims=keepdims), dtype=np.int64)

    return reference


def _arg_infer(x: Spec, axis: int | None, keepdims: bool) -> Spec:
    axes = tuple(range(len(x.shape))) if axis is None else (axis,)
    return Spec(reduced_shape(x.shape, axes, keepdims), _INT64)


_ARGMAX = define(Op("argmax", _arg_ref(np.argmax), infer=_arg_infer, real_only=True, doc="Index of the largest element."))
_ARGMIN = define(Op("argmin", _arg_ref(np.argmin), infer=_arg_infer, real_only=True, doc="Index of the smallest element."))


def _arg(op: Op, x: Tensor, axis: int | None, keepdims: bool) -> Tensor:
    if not isinstance(x, Tensor):
        raise OpError(f"{op.name}: expected a tensor, got {type(x).__name__}")
    if axis is not None:
        axis = normalize_axis(op.name, axis, x.ndim)
        if x.ndim == 0:
            axis = None
    empty = x.size == 0 if axis is None else x.shape[axis] == 0
    if empty:
        where = "an empty tensor" if axis is None else f"axis {axis} of size 0"
        raise OpError(f"{op.name}: cannot search {where} (shape {x.shape}); there is no element to return")
    return apply(op, (x,), {"axis": axis, "keepdims": bool(keepdims)})


def argmax(x: Tensor, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the first largest element along ``axis`` (of the flattened tensor if None)."""
    return _arg(_ARGMAX, x, axis, keepdims)


def argmin(x: Tensor, /, *, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the first smallest element along ``axis`` (of the flattened tensor if None)."""
    return _arg(_ARGMIN, x, axis, keepdims)


_NONZERO = define(Op(
    "nonzero", lambda x: np.stack(np.nonzero(x)).astype(np.int64, copy=False),
    infer=lambda x: Spec((len(x.shape), None), _INT64), doc="Indices of the non-zero elements, one row per axis.",
))


def nonzero(x: Tensor, /) -> tuple[Tensor, ...]:
    """Indices of the non-zero (true) elements: one int64 tensor per axis of ``x``, in row-major order."""
    if not isinstance(x, Tensor):
        raise OpError(f"nonzero: expected a tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise OpError("nonzero: x must have at least one dimension, got a 0-d tensor")
    from tensorcore.ops.indexing import getitem

    rows = apply(_NONZERO, (x,))
    return tuple(getitem(rows, i) for i in range(x.ndim))


def _searchsorted_ref(x1: Any, x2: Any, side: str) -> np.ndarray:
    return np.asarray(np.searchsorted(x1, x2, side=side), dtype=np.int64)


def _searchsorted_infer(x1: Spec, x2: Any, side: str) -> Spec:
    if len(x1.shape) != 1:
        raise OpError(f"searchsorted: x1 must be 1-D, got shape {x1.shape}")
    return Spec(x2.shape if isinstance(x2, Spec) else (), _INT64)


_SEARCHSORTED = define(Op("searchsorted", _searchsorted_ref, infer=_searchsorted_infer, real_only=True, doc="Insertion indices."))


def searchsorted(x1: Tensor, x2: Any, /, *, side: str = "left", sorter: Tensor | None = None) -> Tensor:
    """Where to insert each element of ``x2`` into the sorted 1-D ``x1`` to keep it sorted.

    ``side="left"`` gives the first suitable position, ``"right"`` the last; ``sorter``
    (int indices) sorts an unsorted ``x1`` first.
    """
    if not isinstance(x1, Tensor) or x1.ndim != 1:
        shape = f"shape {x1.shape}" if isinstance(x1, Tensor) else type(x1).__name__
        raise OpError(f"searchsorted: x1 must be a 1-D tensor, got {shape}")
    if side not in ("left", "right"):
        raise OpError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if sorter is not None:
        if not isinstance(sorter, Tensor) or sorter.dtype.kind not in "iu" or sorter.shape != x1.shape:
            got = f"{sorter.dtype}{list(sorter.shape)}" if isinstance(sorter, Tensor) else type(sorter).__name__
            raise OpError(f"searchsorted: sorter must be an integer tensor of x1's shape {x1.shape}, got {got}")
        from tensorcore.ops.indexing import take

        x1 = take(x1, sorter)
    if not isinstance(x2, (Tensor, int, float)):
        raise OpError(f"searchsorted: x2 must be a tensor or a Python scalar, got {type(x2).__name__}")
    return apply(_SEARCHSORTED, (x1, x2), {"side": side})


def _count_ref(x: Any, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.asarray(np.count_nonzero(x, axis=axis, keepdims=keepdims), dtype=np.int64)


_COUNT = define(Op(
    "count_nonzero", _count_ref, infer=lambda x, axis, keepdims: Spec(reduced_shape(x.shape, axis, keepdims), _INT64),
    doc="Number of non-zero elements.",
))


def count_nonzero(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The number of non-zero (true) elements along ``axis`` (an int, a tuple, or None for all)."""
    if not isinstance(x, Tensor):
        raise OpError(f"count_nonzero: expected a tensor, got {type(x).__name__}")
    axes = normalize_axes("count_nonzero", axis, x.ndim)
    return apply(_COUNT, (x,), {"axis": axes, "keepdims": bool(keepdims)})


__all__ = ["argmax", "argmin", "nonzero", "searchsorted", "count_nonzero"]
