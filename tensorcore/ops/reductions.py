"""Reductions and statistics over any set of axes: sum, prod, mean, var, std, max, min, all, any;
and the cumulative (scan) forms ``cumulative_sum`` and ``cumulative_prod``."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from tensorcore import dtypes
from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axes, normalize_axis, reduced_shape
from tensorcore.ops.arithmetic import divide, multiply, subtract
from tensorcore.ops.complex_parts import conj_of
from tensorcore.ops.logic import astype, equal, where
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


def _expand_to(g: Tensor, x: Tensor, axes: tuple[int, ...], keepdims: bool) -> Tensor:
    """Broadcast a reduced gradient back to the input's shape."""
    from tensorcore.ops.manipulation import broadcast_to, reshape

    if not keepdims:
        g = reshape(g, reduced_shape(x.shape, axes, True))
    return broadcast_to(g, x.shape)


def _reduction(name: str, reference: Any, grad: Any = None, out_dtype: Any = None, **flags: bool) -> Op:
    def infer(x: Spec, axis: tuple[int, ...], keepdims: bool, **attrs: Any) -> Spec:
        dt = out_dtype if out_dtype is not None else attrs.get("dtype")
        dt = x.dtype if dt is None else dt
        return Spec(reduced_shape(x.shape, axis, keepdims), dt)

    return define(Op(name, reference, infer=infer, grad=grad, **flags))


def _sum_ref(x: Any, axis: tuple, keepdims: bool, dtype: Any) -> Any:
    # np.add.reduce is what np.sum runs on an ndarray, without np.sum's ~5 us of Python
    # dispatch (a bias gradient's sum of a (64, 128) array takes 6 us in all).
    return np.add.reduce(x, axis=axis, keepdims=keepdims, dtype=dtype)


def _sum_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    return (astype(_expand_to(g, x, ctx.attrs["axis"], ctx.attrs["keepdims"]), x.dtype, copy=False),)


def _mean_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    count = int(np.prod([x.shape[a] for a in ctx.attrs["axis"]], dtype=np.int64))
    return (divide(_expand_to(g, x, ctx.attrs["axis"], ctx.attrs["keepdims"]), builtins.max(count, 1)),)


def _extremum_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.reductions import sum as sum_

    x = ctx.inputs[0]
    axes, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
    hit = equal(x, _expand_to(ctx.output, x, axes, keepdims))
    share = astype(hit, x.dtype)
    share = divide(share, _expand_to(sum_(share, axis=axes, keepdims=True), x, axes, True))
    return (multiply(_expand_to(g, x, axes, keepdims), share),)


def _prod_grad(ctx: Any, g: Tensor) -> tuple:
    # Product of the other elements: out / x where x != 0; exact for at most one zero per slice
    # via the product of the non-zero elements.
    from tensorcore.ops.reductions import prod as prod_
    from tensorcore.ops.reductions import sum as sum_

    x = ctx.inputs[0]
    axes, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
    is_zero = equal(x, 0)
    nonzero = where(is_zero, 1.0, x)
    prod_nonzero = _expand_to(prod_(nonzero, axis=axes, keepdims=True), x, axes, True)
    zeros = _expand_to(sum_(astype(is_zero, x.dtype), axis=axes, keepdims=True), x, axes, True)
    others = where(equal(zeros, 0), divide(prod_nonzero, nonzero), where(is_zero, where(equal(zeros, 1), prod_nonzero, 0.0), 0.0))
    return (astype(multiply(_expand_to(g, x, axes, keepdims), conj_of(others)), x.dtype, copy=False),)


def _var_ref(x: Any, axis: tuple, keepdims: bool, correction: float) -> Any:
    return np.var(x, axis=axis, keepdims=keepdims, ddof=correction)


def _var_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    axes, keepdims, corr = ctx.attrs["axis"], ctx.attrs["keepdims"], ctx.attrs["correction"]
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    centered = subtract(x, mean(x, axis=axes, keepdims=True))
    return (multiply(_expand_to(g, x, axes, keepdims), multiply(centered, 2.0 / builtins.max(count - corr, 1))),)


# complex_grad: the gradient holds for complex inputs; real_only: complex inputs raise TypeError.
_SUM = _reduction("sum", _sum_ref, _sum_grad, complex_grad=True)
_PROD = _reduction("prod", lambda x, axis, keepdims, dtype: np.prod(x, axis=axis, keepdims=keepdims, dtype=dtype), _prod_grad,
                   complex_grad=True)
_MEAN = _reduction("mean", lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims), _mean_grad, float_only=True,
                   complex_grad=True)
_MAX = _reduction("max", lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _extremum_grad, real_only=True)
_MIN = _reduction("min", lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims), _extremum_grad, real_only=True)
_VAR = _reduction("var", _var_ref, _var_grad, float_only=True, real_only=True)
_ALL = _reduction("all", lambda x, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims), out_dtype=np.dtype(bool))
_ANY = _reduction("any", lambda x, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims), out_dtype=np.dtype(bool))


def _sum_dtype(x: Tensor, dtype: Any) -> Any:
    """Array API accumulation dtype: small ints widen to the default int, floats keep theirs."""
    if dtype is not None:
        return dtypes.as_dtype(dtype)
    kind = x.dtype.kind
    if kind == "b" or (kind == "i" and x.dtype.itemsize < 8):
        return dtypes.int64
    if kind == "u" and x.dtype.itemsize < 8:
        return dtypes.uint64
    return None


def _reduce(op: Op, x: Tensor, axis: Any, keepdims: bool, **attrs: Any) -> Tensor:
    if not isinstance(x, Tensor):
        raise OpError(f"{op.name}: expected a tensor, got {type(x).__name__}")
    axes = normalize_axes(op.name, axis, x.ndim)
    if op is _MAX or op is _MIN:
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:
            raise OpError(f"{op.name}: cannot reduce over axis {empty[0]} of size 0 (shape {x.shape}); there is no identity")
    return apply(op, (x,), {"axis": axes, "keepdims": keepdims, **attrs})


def sum(x: Tensor, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (an int, a tuple, or None for all axes)."""
    return _reduce(_SUM, x, axis, keepdims, dtype=_sum_dtype(x, dtype))


def prod(x: Tensor, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis``."""
    return _reduce(_PROD, x, axis, keepdims, dtype=_sum_dtype(x, dtype))


def mean(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (floating-point tensors)."""
    return _reduce(_MEAN, x, axis, keepdims)


def max(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; gradient shared equally among ties."""
    return _reduce(_MAX, x, axis, keepdims)


def min(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; gradient shared equally among ties."""
    return _reduce(_MIN, x, axis, keepdims)


def var(x: Tensor, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Tensor:
    """Variance over ``axis`` with ``correction`` degrees of freedom removed."""
    return _reduce(_VAR, x, axis, keepdims, correction=correction)


def std(x: Tensor, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Tensor:
    """Standard deviation over ``axis`` (the square root of :func:`var`)."""
    from tensorcore.ops.math import sqrt

    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def all(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether every element along ``axis`` is true."""
    return _reduce(_ALL, x, axis, keepdims)


def any(x: Tensor, /, *, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether some element along ``axis`` is true."""
    return _reduce(_ANY, x, axis, keepdims)


# --- cumulative sums and products ------------------------------------------------------


def _with_initial(scan: np.ndarray, axis: int, initial: int) -> np.ndarray:
    """``scan`` with the identity ``initial`` prepended along ``axis``."""
    shape = list(scan.shape)
    shape[axis] = 1
    return np.concatenate([np.full(shape, initial, dtype=scan.dtype), scan], axis=axis)


def _cumsum_ref(x: Any, axis: int, dtype: Any, include_initial: bool) -> np.ndarray:
    out = np.cumsum(x, axis=axis, dtype=dtype)
    return _with_initial(out, axis, 0) if include_initial else out


def _cumprod_ref(x: Any, axis: int, dtype: Any, include_initial: bool) -> np.ndarray:
    out = np.cumprod(x, axis=axis, dtype=dtype)
    return _with_initial(out, axis, 1) if include_initial else out


def _scan_infer(x: Spec, axis: int, dtype: Any, include_initial: bool) -> Spec:
    shape = tuple(n + 1 if i == axis and include_initial else n for i, n in enumerate(x.shape))
    return Spec(shape, x.dtype if dtype is None else dtype)


def _drop_initial(g: Tensor, axis: int, include_initial: bool) -> Tensor:
    """The part of an output gradient that belongs to the scanned elements (not the identity)."""
    from tensorcore.ops.indexing import getitem

    return getitem(g, (slice(None),) * axis + (slice(1, None),)) if include_initial else g


def _cumsum_grad(ctx: Any, g: Tensor) -> tuple:
    # out[j] = sum_{i <= j} x[i], so dx[i] = sum_{j >= i} g[j]: a reversed cumulative sum.
    from tensorcore.ops.manipulation import flip

    x, axis = ctx.inputs[0], ctx.attrs["axis"]
    g = _drop_initial(g, axis, ctx.attrs["include_initial"])
    rev = apply(_CUMSUM, (flip(g, axis=axis),), {"axis": axis, "dtype": None, "include_initial": False})
    return (astype(flip(rev, axis=axis), x.dtype, copy=False),)


def _cumprod_grad_ref(x: Any, g: Any, axis: int) -> np.ndarray:
    """dx[i] = prod(x[:i]) * s[i], s[i] = g[i] + x[i+1] * s[i+1]: exact with zeros (no division)."""
    x, g = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(g), axis, -1)
    s = np.empty(np.broadcast_shapes(x.shape, g.shape), dtype=np.result_type(x, g))
    acc = np.zeros(s.shape[:-1], dtype=s.dtype)
    for i in reversed(range(x.shape[-1])):
        acc = g[..., i] + (x[..., i + 1] * acc if i + 1 < x.shape[-1] else 0)
        s[..., i] = acc
    before = _with_initial(np.cumprod(x[..., :-1], axis=-1), -1, 1) if x.shape[-1] else np.ones_like(x)
    return np.moveaxis(before * s, -1, axis)


_CUMPROD_GRAD = define(Op("cumulative_prod_grad", _cumprod_grad_ref,
                          doc="Gradient of cumulative_prod (not itself differentiable)."))


def _cumprod_grad(ctx: Any, g: Tensor) -> tuple:
    x, axis = ctx.inputs[0], ctx.attrs["axis"]
    g = _drop_initial(g, axis, ctx.attrs["include_initial"])
    return (astype(apply(_CUMPROD_GRAD, (x, g), {"axis": axis}), x.dtype, copy=False),)


_CUMSUM = define(Op("cumulative_sum", _cumsum_ref, infer=_scan_infer, grad=_cumsum_grad, doc="Running sum."))
_CUMPROD = define(Op("cumulative_prod", _cumprod_ref, infer=_scan_infer, grad=_cumprod_grad, doc="Running product."))


def _scan(op: Op, x: Tensor, axis: int | None, dtype: Any, include_initial: bool) -> Tensor:
    if not isinstance(x, Tensor):
        raise OpError(f"{op.name}: expected a tensor, got {type(x).__name__}")
    if axis is None:
        if x.ndim > 1:
            raise OpError(f"{op.name}: axis is required for a {x.ndim}-D tensor (shape {x.shape})")
        axis = 0
    if x.ndim == 0:
        raise OpError(f"{op.name}: x must have at least one dimension, got a 0-d tensor")
    axis = normalize_axis(op.name, axis, x.ndim)
    attrs = {"axis": axis, "dtype": _sum_dtype(x, dtype), "include_initial": bool(include_initial)}
    return apply(op, (x,), attrs)


def cumulative_sum(x: Tensor, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Tensor:
    """Running sum along ``axis`` (optional for 1-D); ``include_initial`` prepends a 0."""
    return _scan(_CUMSUM, x, axis, dtype, include_initial)


def cumulative_prod(x: Tensor, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Tensor:
    """Running product along ``axis`` (optional for 1-D); ``include_initial`` prepends a 1."""
    return _scan(_CUMPROD, x, axis, dtype, include_initial)


__all__ = ["sum", "prod", "mean", "max", "min", "var", "std", "all", "any", "cumulative_sum", "cumulative_prod"]
