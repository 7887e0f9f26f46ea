"""Sorting: ``sort`` (differentiable) and ``argsort``, ascending or descending, stable."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axis
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _argsort_ref(x: Any, axis: int, descending: bool, stable: bool) -> np.ndarray:
    x = np.asarray(x)
    kind = "stable" if stable else None
    if not descending:
        return np.argsort(x, axis=axis, kind=kind).astype(np.int64, copy=False)
    # Descending and still stable (ties keep their order): sort the reversed tensor
    # ascending, reverse the result, and map positions back to the original order.
    n = x.shape[axis]
    rev = np.argsort(np.flip(x, axis), axis=axis, kind=kind)
    return (n - 1 - np.flip(rev, axis)).astype(np.int64, copy=False)


def _sort_ref(x: Any, axis: int, descending: bool, stable: bool) -> np.ndarray:
    if not descending:
        return np.sort(x, axis=axis, kind="stable" if stable else None)
    return np.take_along_axis(x, _argsort_ref(x, axis, True, stable), axis)


def _sort_grad(ctx: Any, g: Tensor) -> tuple:
    # Each output element came from one input element: send its gradient back there.
    from tensorcore.ops.indexing import scatter_along_axis

    x = ctx.inputs[0]
    perm = apply(_ARGSORT, (x,), ctx.attrs)
    return (scatter_along_axis(g, perm, ctx.attrs["axis"], x.shape),)


def _infer(dtype: Any) -> Any:
    def infer(x: Spec, axis: int, descending: bool, stable: bool) -> Spec:
        return Spec(x.shape, x.dtype if dtype is None else dtype)

    return infer


_SORT = define(Op("sort", _sort_ref, infer=_infer(None), grad=_sort_grad, real_only=True, doc="Sorted copy along an axis."))
_ARGSORT = define(Op("argsort", _argsort_ref, infer=_infer(np.dtype(np.int64)), real_only=True, doc="Sorting permutation."))


def _attrs(name: str, x: Any, axis: int, descending: bool, stable: bool) -> dict[str, Any]:
    if not isinstance(x, Tensor):
        raise OpError(f"{name}: expected a tensor, got {type(x).__name__}")
    if x.ndim == 0:
        raise OpError(f"{name}: x must have at least one dimension, got a 0-d tensor")
    return {"axis": normalize_axis(name, axis, x.ndim), "descending": bool(descending), "stable": bool(stable)}


def sort(x: Tensor, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """``x`` sorted along ``axis``; the gradient follows the permutation.

    NaNs sort last when ascending and first when descending (descending is the exact reverse
    of ascending, except that ties keep their order when ``stable``).
    """
    return apply(_SORT, (x,), _attrs("sort", x, axis, descending, stable))


def argsort(x: Tensor, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Tensor:
    """The int64 indices that sort ``x`` along ``axis``; ties keep their order when ``stable``."""
    return apply(_ARGSORT, (x,), _attrs("argsort", x, axis, descending, stable))


__all__ = ["sort", "argsort"]
