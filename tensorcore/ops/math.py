"""Unary elementwise math ops and their gradients."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tensorcore.ops._define import unary
from tensorcore.ops.arithmetic import add, divide, multiply, negative, subtract
from tensorcore.ops.complex_parts import conj_of
from tensorcore.tensor import Tensor


def _zeros(ctx: Any, g: Tensor) -> tuple:
    """Gradient of a piecewise-constant op: zero almost everywhere."""
    return (multiply(g, 0.0),)


def _rsqrt(x: Tensor) -> Tensor:
    return divide(1.0, sqrt(x))


def _acosh_slope(x: Tensor) -> Tensor:
    """acosh'(x) = 1 / sqrt(x**2 - 1) for real x; for complex x, 1 / (sqrt(x - 1) sqrt(x + 1)),
    which has acosh's branch cut (the other form flips sign where Re x < 0)."""
    if x.dtype.kind == "c":
        return multiply(_rsqrt(subtract(x, 1.0)), _rsqrt(add(x, 1.0)))
    return _rsqrt(subtract(multiply(x, x), 1.0))


def _sign(x: np.ndarray) -> np.ndarray:
    """NumPy's sign, with the spec's special case for complex numbers: a NaN in either part
    gives NaN + NaN j (NumPy's ``sign(nan + inf j)`` is ``1j``)."""
    out = np.sign(x)
    if out.dtype.kind == "c":
        out = np.where(np.isnan(x.real) | np.isnan(x.imag), np.array(complex(np.nan, np.nan), out.dtype), out)
    return out


def _g(fn: Any) -> Any:
    """Gradient from ``fn(x, out, g) -> dx`` for a one-input op."""
    return lambda ctx, g: (fn(ctx.inputs[0], ctx.output, g),)


# complex_grad: the gradient holds for complex inputs (the derivative conjugated, see
# ops/complex_parts.py); real_only: complex inputs raise TypeError (the spec's "real-valued").
abs = unary("abs", np.abs, _g(lambda x, out, g: multiply(g, sign(x))), complex_grad=True, doc="Elementwise absolute value (the modulus of a complex number, in the real dtype of its precision).")  # noqa: A001
sign = unary("sign", _sign, _zeros, doc="Elementwise sign: -1, 0 or 1 (``z / |z|`` for a complex ``z``, 0 at 0).")
exp = unary("exp", np.exp, _g(lambda x, out, g: multiply(g, conj_of(out))), float_only=True, complex_grad=True, doc="Elementwise ``e**x``.")
expm1 = unary("expm1", np.expm1, _g(lambda x, out, g: multiply(g, conj_of(add(out, 1.0)))), float_only=True, complex_grad=True, doc="Elementwise ``exp(x) - 1``, accurate near 0.")
log = unary("log", np.log, _g(lambda x, out, g: divide(g, conj_of(x))), float_only=True, complex_grad=True, doc="Elementwise natural logarithm.")
log1p = unary("log1p", np.log1p, _g(lambda x, out, g: divide(g, conj_of(add(x, 1.0)))), float_only=True, complex_grad=True, doc="Elementwise ``log(1 + x)``, accurate near 0.")
log2 = unary("log2", np.log2, _g(lambda x, out, g: divide(g, conj_of(multiply(x, math.log(2.0))))), float_only=True, complex_grad=True, doc="Elementwise base-2 logarithm.")
log10 = unary("log10", np.log10, _g(lambda x, out, g: divide(g, conj_of(multiply(x, math.log(10.0))))), float_only=True, complex_grad=True, doc="Elementwise base-10 logarithm.")
sqrt = unary("sqrt", np.sqrt, _g(lambda x, out, g: divide(g, conj_of(multiply(out, 2.0)))), float_only=True, complex_grad=True, doc="Elementwise square root.")
square = unary("square", np.square, _g(lambda x, out, g: multiply(g, conj_of(multiply(x, 2.0)))), complex_grad=True, doc="Elementwise ``x * x``.")
sin = unary("sin", np.sin, _g(lambda x, out, g: multiply(g, conj_of(cos(x)))), float_only=True, complex_grad=True, doc="Elementwise sine.")
cos = unary("cos", np.cos, _g(lambda x, out, g: negative(multiply(g, conj_of(sin(x))))), float_only=True, complex_grad=True, doc="Elementwise cosine.")
tan = unary("tan", np.tan, _g(lambda x, out, g: multiply(g, conj_of(add(multiply(out, out), 1.0)))), float_only=True, complex_grad=True, doc="Elementwise tangent.")
asin = unary("asin", np.arcsin, _g(lambda x, out, g: multiply(g, conj_of(_rsqrt(subtract(1.0, multiply(x, x)))))), float_only=True, complex_grad=True, doc="Elementwise inverse sine.")
acos = unary("acos", np.arccos, _g(lambda x, out, g: negative(multiply(g, conj_of(_rsqrt(subtract(1.0, multiply(x, x))))))), float_only=True, complex_grad=True, doc="Elementwise inverse cosine.")
atan = unary("atan", np.arctan, _g(lambda x, out, g: divide(g, conj_of(add(multiply(x, x), 1.0)))), float_only=True, complex_grad=True, doc="Elementwise inverse tangent.")
sinh = unary("sinh", np.sinh, _g(lambda x, out, g: multiply(g, conj_of(cosh(x)))), float_only=True, complex_grad=True, doc="Elementwise hyperbolic sine.")
cosh = unary("cosh", np.cosh, _g(lambda x, out, g: multiply(g, conj_of(sinh(x)))), float_only=True, complex_grad=True, doc="Elementwise hyperbolic cosine.")
tanh = unary("tanh", np.tanh, _g(lambda x, out, g: multiply(g, conj_of(subtract(1.0, multiply(out, out))))), float_only=True, complex_grad=True, doc="Elementwise hyperbolic tangent.")
asinh = unary("asinh", np.arcsinh, _g(lambda x, out, g: multiply(g, conj_of(_rsqrt(add(multiply(x, x), 1.0))))), float_only=True, complex_grad=True, doc="Elementwise inverse hyperbolic sine.")
acosh = unary("acosh", np.arccosh, _g(lambda x, out, g: multiply(g, conj_of(_acosh_slope(x)))), float_only=True, complex_grad=True, doc="Elementwise inverse hyperbolic cosine.")
atanh = unary("atanh", np.arctanh, _g(lambda x, out, g: divide(g, conj_of(subtract(1.0, multiply(x, x))))), float_only=True, complex_grad=True, doc="Elementwise inverse hyperbolic tangent.")
floor = unary("floor", np.floor, _zeros, real_only=True, doc="Elementwise floor.")
ceil = unary("ceil", np.ceil, _zeros, real_only=True, doc="Elementwise ceiling.")
trunc = unary("trunc", np.trunc, _zeros, real_only=True, doc="Elementwise rounding toward zero.")
round = unary("round", np.round, _zeros, complex_grad=True, doc="Elementwise rounding to the nearest integer, half to even (real and imaginary parts apart).")  # noqa: A001
reciprocal = unary("reciprocal", np.reciprocal, _g(lambda x, out, g: negative(multiply(g, conj_of(multiply(out, out))))), float_only=True, complex_grad=True, doc="Elementwise ``1 / x``.")
signbit = unary("signbit", np.signbit, out_dtype=np.dtype(bool), real_only=True, doc="Elementwise: whether the sign bit is set.")
isfinite = unary("isfinite", np.isfinite, out_dtype=np.dtype(bool), doc="Elementwise: whether the value is finite.")
isinf = unary("isinf", np.isinf, out_dtype=np.dtype(bool), doc="Elementwise: whether the value is infinite.")
isnan = unary("isnan", np.isnan, out_dtype=np.dtype(bool), doc="Elementwise: whether the value is NaN.")

__all__ = [
    "abs",
    "sign",
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sqrt",
    "square",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "floor",
    "ceil",
    "trunc",
    "round",
    "reciprocal",
    "signbit",
    "isfinite",
    "isinf",
    "isnan",
]
