"""Binary arithmetic ops (broadcasting, Array API type promotion) and their gradients.

Gradients of complex inputs follow ``ops/complex_parts.py``: the derivative is conjugated
(``conj_of``, no op at all for real inputs).
"""

from __future__ import annotations

import cmath
import math
from typing import Any

import numpy as np

from tensorcore.ops._define import binary, unary
from tensorcore.ops.complex_parts import conj_of
from tensorcore.tensor import Tensor


def sum_to_shape(g: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``g`` over the dimensions that broadcasting added to reach it from ``shape``."""
    if g.shape == shape:
        return g
    from tensorcore.ops.manipulation import reshape
    from tensorcore.ops.reductions import sum as sum_

    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    return reshape(sum_(g, axis=axes), shape)


def unbroadcast(g: Tensor, x: Any) -> Tensor | None:
    """The gradient ``g`` of a broadcast result, reduced to input ``x``; None for scalars."""
    return sum_to_shape(g, x.shape) if isinstance(x, Tensor) else None


def _add_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    return unbroadcast(g, a), unbroadcast(g, b)


def _sub_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    return unbroadcast(g, a), (unbroadcast(negative(g), b) if ctx.needs_grad[1] else None)


def _mul_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    ga = unbroadcast(multiply(g, conj_of(b)), a) if ctx.needs_grad[0] else None
    gb = unbroadcast(multiply(g, conj_of(a)), b) if ctx.needs_grad[1] else None
    return ga, gb


def _div_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    ga = unbroadcast(divide(g, conj_of(b)), a) if ctx.needs_grad[0] else None
    gb = unbroadcast(negative(multiply(g, conj_of(divide(ctx.output, b)))), b) if ctx.needs_grad[1] else None
    return ga, gb


def _pow_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.logic import where
    from tensorcore.ops.math import log

    a, b = ctx.inputs
    ga = gb = None
    if ctx.needs_grad[0]:
        ga = unbroadcast(multiply(g, conj_of(multiply(b, pow(a, b - 1)))), a)  # b - 1 stays a scalar for scalar b
    if ctx.needs_grad[1]:
        if ctx.output.dtype.kind == "c":  # d/db a**b = a**b log a, with the complex logarithm
            log_a = (log(a if a.dtype == ctx.output.dtype else a.astype(ctx.output.dtype)) if isinstance(a, Tensor)
                     else cmath.log(a) if a != 0 else 0.0)
            gb = unbroadcast(multiply(g, conj_of(multiply(ctx.output, log_a))), b)
        else:  # taken as 0 where a <= 0 (a may be a Python scalar)
            safe_log = log(where(a > 0, a, 1.0)) if isinstance(a, Tensor) else (math.log(a) if a > 0 else 0.0)
            gb = unbroadcast(multiply(g, multiply(ctx.output, safe_log)), b)
    return ga, gb


def _select_grad(first_wins: Any) -> Any:
    def grad(ctx: Any, g: Tensor) -> tuple:
        from tensorcore.ops.logic import where

        a, b = ctx.inputs
        mask = first_wins(a, b)
        zero = 0.0
        return unbroadcast(where(mask, g, zero), a), unbroadcast(where(mask, zero, g), b)

    return grad


def _atan2_grad(ctx: Any, g: Tensor) -> tuple:
    y, x = ctx.inputs
    denom = x * x + y * y  # operators: either input may be a Python scalar
    return unbroadcast(divide(multiply(g, x), denom), y), unbroadcast(negative(divide(multiply(g, y), denom)), x)


def _hypot_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    scale = divide(g, ctx.output)
    return unbroadcast(multiply(scale, a), a), unbroadcast(multiply(scale, b), b)


def _logaddexp_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.math import exp

    a, b = ctx.inputs
    out = ctx.output
    return unbroadcast(multiply(g, exp(subtract(a, out))), a), unbroadcast(multiply(g, exp(subtract(b, out))), b)


def _remainder_grad(ctx: Any, g: Tensor) -> tuple:
    a, b = ctx.inputs
    gb = unbroadcast(negative(multiply(g, floor_divide(a, b))), b) if ctx.needs_grad[1] else None
    return unbroadcast(g, a), gb


def _copysign_grad(ctx: Any, g: Tensor) -> tuple:
    from tensorcore.ops.logic import equal, where
    from tensorcore.ops.math import signbit

    a, b = ctx.inputs
    same = equal(signbit(a), signbit(b)) if isinstance(b, Tensor) else signbit(a) == (b < 0)
    return unbroadcast(where(same, g, negative(g)), a), None


# complex_grad: the gradient holds for complex inputs; real_only: complex inputs raise TypeError.
add = binary("add", np.add, _add_grad, complex_grad=True, doc="Elementwise ``x1 + x2``.")
subtract = binary("subtract", np.subtract, _sub_grad, complex_grad=True, doc="Elementwise ``x1 - x2``.")
multiply = binary("multiply", np.multiply, _mul_grad, complex_grad=True, doc="Elementwise ``x1 * x2``.")
divide = binary("divide", np.true_divide, _div_grad, complex_grad=True, doc="Elementwise true division ``x1 / x2``.")
pow = binary("pow", np.power, _pow_grad, complex_grad=True, doc="Elementwise ``x1 ** x2``.")  # noqa: A001
maximum = binary("maximum", np.maximum, _select_grad(lambda a, b: a >= b), real_only=True, doc="Elementwise maximum (NaN propagates).")
minimum = binary("minimum", np.minimum, _select_grad(lambda a, b: a <= b), real_only=True, doc="Elementwise minimum (NaN propagates).")
atan2 = binary("atan2", np.arctan2, _atan2_grad, float_only=True, real_only=True, doc="Elementwise angle of the point (x2, x1).")
hypot = binary("hypot", np.hypot, _hypot_grad, float_only=True, real_only=True, doc="Elementwise ``sqrt(x1**2 + x2**2)`` without overflow.")
logaddexp = binary("logaddexp", np.logaddexp, _logaddexp_grad, float_only=True, real_only=True, doc="Elementwise ``log(exp(x1) + exp(x2))``, stably.")
copysign = binary("copysign", np.copysign, _copysign_grad, float_only=True, real_only=True, doc="``|x1|`` with the sign of ``x2``.")
floor_divide = binary("floor_divide", np.floor_divide, real_only=True, doc="Elementwise ``x1 // x2``.")
nextafter = binary("nextafter", np.nextafter, float_only=True, real_only=True, doc="The next representable value after ``x1`` toward ``x2``.")
remainder = binary("remainder", np.remainder, _remainder_grad, real_only=True, doc="Elementwise ``x1 % x2`` (sign of the divisor).")

negative = unary("negative", np.negative, lambda ctx, g: (negative(g),), complex_grad=True, doc="Elementwise ``-x``.")
positive = unary("positive", np.positive, lambda ctx, g: (g,), complex_grad=True, doc="Elementwise ``+x`` (a copy).")

__all__ = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "pow",
    "maximum",
    "minimum",
    "atan2",
    "hypot",
    "logaddexp",
    "copysign",
    "floor_divide",
    "remainder",
    "nextafter",
    "negative",
    "positive",
]
