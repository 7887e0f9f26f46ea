"""Comparison, logical and bitwise ops, ``where``, ``clip`` and ``astype``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore import dtypes
from tensorcore.device import resolve
from tensorcore.dispatch import apply
from tensorcore.dtypes import ComplexInputError, check_real
from tensorcore.errors import OpError
from tensorcore.ops._define import binary, reference_dtype, unary
from tensorcore.ops.arithmetic import maximum, minimum, unbroadcast
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

_BOOL = np.dtype(bool)

equal = binary("equal", np.equal, out_dtype=_BOOL, doc="Elementwise ``x1 == x2``.")
not_equal = binary("not_equal", np.not_equal, out_dtype=_BOOL, doc="Elementwise ``x1 != x2``.")
# Orderings are real-only: complex numbers have no order (NumPy's lexicographic one is not the spec's).
less = binary("less", np.less, out_dtype=_BOOL, real_only=True, doc="Elementwise ``x1 < x2``.")
less_equal = binary("less_equal", np.less_equal, out_dtype=_BOOL, real_only=True, doc="Elementwise ``x1 <= x2``.")
greater = binary("greater", np.greater, out_dtype=_BOOL, real_only=True, doc="Elementwise ``x1 > x2``.")
greater_equal = binary("greater_equal", np.greater_equal, out_dtype=_BOOL, real_only=True, doc="Elementwise ``x1 >= x2``.")
logical_and = binary("logical_and", np.logical_and, out_dtype=_BOOL, doc="Elementwise logical AND.")
logical_or = binary("logical_or", np.logical_or, out_dtype=_BOOL, doc="Elementwise logical OR.")
logical_xor = binary("logical_xor", np.logical_xor, out_dtype=_BOOL, doc="Elementwise logical XOR.")
logical_not = unary("logical_not", np.logical_not, out_dtype=_BOOL, doc="Elementwise logical NOT.")
bitwise_and = binary("bitwise_and", np.bitwise_and, doc="Elementwise bitwise AND of integer or bool tensors.")
bitwise_or = binary("bitwise_or", np.bitwise_or, doc="Elementwise bitwise OR of integer or bool tensors.")
bitwise_xor = binary("bitwise_xor", np.bitwise_xor, doc="Elementwise bitwise XOR of integer or bool tensors.")
bitwise_left_shift = binary("bitwise_left_shift", np.left_shift, doc="Elementwise ``x1 << x2``.")
bitwise_right_shift = binary("bitwise_right_shift", np.right_shift, doc="Elementwise ``x1 >> x2``.")
bitwise_invert = unary("bitwise_invert", np.invert, doc="Elementwise bitwise NOT.")


def _where_infer(cond: Spec, a: Any, b: Any) -> Spec:
    if isinstance(cond, Spec) and cond.dtype != _BOOL:
        raise OpError(f"where: condition must be a bool tensor, got {cond.dtype}")
    shapes = [x.shape for x in (cond, a, b) if isinstance(x, Spec)]
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise OpError(f"where: shapes {', '.join(map(str, shapes))} cannot be broadcast together") from None
    return Spec(shape, np.result_type(*[x.dtype if isinstance(x, Spec) else x for x in (a, b)]))


def _where_grad(ctx: Any, g: Tensor) -> tuple:
    cond, a, b = ctx.inputs
    ga = unbroadcast(where(cond, g, 0.0), a) if ctx.needs_grad[1] else None
    gb = unbroadcast(where(cond, 0.0, g), b) if ctx.needs_grad[2] else None
    return None, ga, gb


_WHERE = define(Op("where", np.where, infer=_where_infer, grad=_where_grad, complex_grad=True, doc="Elementwise choice."))


def where(condition: Tensor, x1: Any, x2: Any, /) -> Tensor:
    """Elements of ``x1`` where ``condition`` is true, else of ``x2`` (broadcasting)."""
    return apply(_WHERE, (condition, x1, x2))


def _clip_grad(ctx: Any, g: Tensor) -> tuple:
    x = ctx.inputs[0]
    lo, hi = ctx.attrs["lo"], ctx.attrs["hi"]
    inside = None
    if lo is not None:
        inside = greater_equal(x, lo)
    if hi is not None:
        upper = less_equal(x, hi)
        inside = upper if inside is None else logical_and(inside, upper)
    return (g if inside is None else where(inside, g, 0.0),)


def _clip_ref(x: Any, lo: Any, hi: Any) -> Any:
    return np.clip(x, lo, hi)


_CLIP = define(Op("clip", _clip_ref, infer=lambda x, lo, hi: Spec(x.shape, reference_dtype(_clip_ref, x, lo=lo, hi=hi)),
                  grad=_clip_grad, real_only=True, doc="Clamp values."))


def clip(x: Tensor, /, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """Clamp each element of ``x`` to ``[min, max]`` (either bound may be None or a tensor);
    real dtypes only."""
    check_real("clip", (x, min, max))
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x if min is None else maximum(x, min)
        return out if max is None else minimum(out, max)
    if min is None and max is None:
        return astype(x, x.dtype, copy=True)
    return apply(_CLIP, (x,), {"lo": min, "hi": max})


def _astype_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.complex_parts import real

    x = ctx.inputs[0]
    if x.dtype.kind not in "fc":
        return (None,)
    # real -> complex: the real input's gradient is the real part (dL/dx of x + 0i)
    return (astype(real(g) if x.dtype.kind == "f" else g, x.dtype),)


def _astype_ref(x: Any, dtype: np.dtype, copy: bool) -> Any:
    return np.asarray(x).astype(dtype, copy=copy)


_ASTYPE = define(Op("astype", _astype_ref, infer=lambda x, dtype, copy: Spec(x.shape, dtype), grad=_astype_grad,
                    complex_grad=True, doc="Cast."))


def astype(x: Tensor, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Tensor:
    """``x`` cast to ``dtype`` (NumPy casting rules: float to int truncates). Complex to a real
    dtype raises ``TypeError``, as the spec asks: take ``real(x)`` (or ``abs(x)``) first. With
    ``copy=False``, a tensor that already has ``dtype`` (on ``device``) is returned itself."""
    dt = dtypes.as_dtype(dtype)
    src = getattr(x, "dtype", None)
    if dt.kind != "c" and src is not None and src.kind == "c":
        raise ComplexInputError(f"astype: casting {src} to {dt} would drop the imaginary part, which the Array API "
                                "does not permit; cast tc.real(x) (or tc.abs(x)) instead")
    if not copy and src == dt and isinstance(x, Tensor) and (device is None or x.device == resolve(device)):
        return x  # the spec: copy=False and the dtype already matches return the input itself
    out = apply(_ASTYPE, (x,), {"dtype": dt, "copy": copy})
    return out if device is None else out.to_device(device)

__all__ = [
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_left_shift",
    "bitwise_right_shift",
    "bitwise_invert",
    "where",
    "clip",
    "astype",
]
