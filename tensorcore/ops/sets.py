"""Set functions: ``unique_all``, ``unique_counts``, ``unique_inverse``, ``unique_values``, ``isin``.

Results have data-dependent shapes. As the Array API asks, every NaN counts as a distinct
value; ``inverse_indices`` has the shape of the input, the other results are 1-D.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_INT64 = np.dtype(np.int64)


class UniqueAllResult(NamedTuple):
    """``unique_all``'s result."""

    values: Tensor
    indices: Tensor
    inverse_indices: Tensor
    counts: Tensor


class UniqueCountsResult(NamedTuple):
    """``unique_counts``'s result."""

    values: Tensor
    counts: Tensor


class UniqueInverseResult(NamedTuple):
    """``unique_inverse``'s result."""

    values: Tensor
    inverse_indices: Tensor


def _unique_op(name: str, index: bool, inverse: bool, counts: bool) -> Op:
    """One unique op returning the values plus the parts asked for, in the spec's field order."""

    def reference(x: Any) -> Any:
        x = np.asarray(x)
        out = np.unique(
            x.reshape(-1), return_index=index, return_inverse=inverse, return_counts=counts, equal_nan=False,
        )
        if not isinstance(out, tuple):
            return out
        values, *rest = out
        parts = [values]
        if index:
            parts.append(rest.pop(0).astype(np.int64, copy=False))
        if inverse:
            parts.append(rest.pop(0).astype(np.int64, copy=False).reshape(x.shape))
        if counts:
            parts.append(rest.pop(0).astype(np.int64, copy=False))
        return tuple(parts)

    def infer(x: Spec) -> Any:
        specs = [Spec((None,), x.dtype)]
        if index:
            specs.append(Spec((None,), _INT64))
        if inverse:
            specs.append(Spec(x.shape, _INT64))
        if counts:
            specs.append(Spec((None,), _INT64))
        return tuple(specs) if len(specs) > 1 else specs[0]

    n = 1 + index + inverse + counts
    return define(Op(name, reference, infer=infer, n_outputs=n, doc=f"{name} over the flattened tensor."))


_UNIQUE_ALL = _unique_op("unique_all", True, True, True)
_UNIQUE_COUNTS = _unique_op("unique_counts", False, False, True)
_UNIQUE_INVERSE = _unique_op("unique_inverse", False, True, False)
_UNIQUE_VALUES = _unique_op("unique_values", False, False, False)


def _check(name: str, x: Any) -> None:
    if not isinstance(x, Tensor):
        raise OpError(f"{name}: expected a tensor, got {type(x).__name__}")


def unique_all(x: Tensor, /) -> UniqueAllResult:
    """Sorted unique values, the index of each one's first occurrence, the inverse map, the counts."""
    _check("unique_all", x)
    return UniqueAllResult(*apply(_UNIQUE_ALL, (x,)))


def unique_counts(x: Tensor, /) -> UniqueCountsResult:
    """Sorted unique values of ``x`` and how often each occurs."""
    _check("unique_counts", x)
    return UniqueCountsResult(*apply(_UNIQUE_COUNTS, (x,)))


def unique_inverse(x: Tensor, /) -> UniqueInverseResult:
    """Sorted unique values and, for each element of ``x``, the index of its value (shape of ``x``)."""
    _check("unique_inverse", x)
    return UniqueInverseResult(*apply(_UNIQUE_INVERSE, (x,)))


def unique_values(x: Tensor, /) -> Tensor:
    """Sorted unique values of ``x`` (1-D; every NaN is kept)."""
    _check("unique_values", x)
    return apply(_UNIQUE_VALUES, (x,))


def _isin_ref(x1: Any, x2: Any, invert: bool) -> np.ndarray:
    return np.asarray(np.isin(x1, x2, invert=invert))


_ISIN = define(Op(
    "isin", _isin_ref, infer=lambda x1, x2, invert: Spec(x1.shape if isinstance(x1, Spec) else (), np.dtype(bool)),
    doc="Elementwise membership test.",
))


def isin(x1: Any, x2: Any, /, *, invert: bool = False) -> Tensor:
    """Whether each element of ``x1`` occurs in ``x2`` (negated with ``invert``); shape of ``x1``."""
    for name, v in (("x1", x1), ("x2", x2)):
        if not isinstance(v, (Tensor, int, float)) or isinstance(v, bool):
            raise OpError(f"isin: {name} must be a tensor or a Python int or float, got {type(v).__name__}")
    return apply(_ISIN, (x1, x2), {"invert": bool(invert)})


__all__ = ["unique_all", "unique_counts", "unique_inverse", "unique_values", "isin"]
