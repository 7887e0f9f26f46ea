"""Fuzz specs of the elementwise ops: unary and binary math, comparisons, logic, bitwise,
``where``, ``clip``, ``astype`` and the elementwise activations with their backward ops.

Dtypes: every dtype of the Array API set (bool, the integers, float16/32/64) unless the op is
float-only; a combination NumPy refuses (``bitwise_and`` on floats, ``negative`` on bools,
negative integer powers) must be refused on every device with an ``OpError``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from fuzz.spec import EXACT, Case, Spec, Tol, binary, custom_bound, dtype_of, ulps, unary
from fuzz.values import ALL, FLOATS, INTS, arg, broadcastable, scalar, shape

# Exact on every device: integer arithmetic wraps as NumPy's does, comparisons and logic are
# exact, and IEEE's + - * (and x * x) are correctly rounded in every dtype.
EXACT_UNARY = ["abs", "negative", "positive", "sign", "square", "floor", "ceil", "trunc", "round", "isnan",
               "isinf", "isfinite", "signbit", "logical_not", "bitwise_invert", "relu", "stop_gradient"]
EXACT_BINARY = ["add", "subtract", "multiply", "maximum", "minimum", "equal", "not_equal", "less", "less_equal",
                "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
                "bitwise_xor", "bitwise_left_shift", "bitwise_right_shift", "floor_divide", "remainder"]
# Float math within OpenCL's documented error plus NumPy's (fuzz.spec.OPENCL_ULPS).
MATH_UNARY = ["exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "reciprocal", "sin", "cos", "tan", "asin",
              "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh"]


BINARY = EXACT_BINARY + ["divide", "pow", "atan2", "hypot", "logaddexp", "copysign", "nextafter"]


def _logaddexp_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    # max + log1p(exp(-|a - b|)): the difference a - b is rounded once, relative to |a| + |b|.
    """logaddexp's error bound (see the comment below)."""
    a, b = (np.abs(np.asarray(v, np.float64)) for v in args)
    return 8 * eps * (a + b)


def _gelu_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    # x * (1 + erf(x / sqrt 2)) / 2 cancels for x << 0: an error of erf's (16 ulps) times |x|.
    """gelu's error bound (see the comment below)."""
    return 32 * eps * np.abs(args[0])


def _gelu_backward_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    """gelu_backward's error bound: gelu's, times the gradient, for gelu' of x."""
    g, x = np.abs(args[0]), np.abs(args[1])
    return 64 * eps * g * (1 + x + x * x)


def _sigmoid_backward_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    # g * y * (1 - y): 1 - y is rounded relative to 1 + |y|.
    """sigmoid_backward's error bound (see the comment below)."""
    g, y = np.abs(args[0]), np.abs(args[1])
    return 4 * eps * g * y * (1 + y)


@st.composite
def _where(draw: st.DrawFn) -> Case:
    """(condition, x1, x2) broadcast together, mixed dtypes, a Python scalar now and then."""
    out = draw(shape())
    cond = draw(arg(draw(broadcastable(out)), np.bool_))
    d1 = dtype_of(draw, ALL)
    d2 = d1 if draw(st.booleans()) else dtype_of(draw, ALL)
    x1, x2 = (draw(arg(draw(broadcastable(out)), d)) for d in (d1, d2))
    if draw(st.integers(0, 3)) == 0:
        x2 = scalar(draw, draw(st.sampled_from(["float", "int", "bool"])))
    return Case((cond, x1, x2))


@st.composite
def _clip(draw: st.DrawFn) -> Case:
    """x with Python-scalar bounds (either may be None, lo may exceed hi)."""
    dt = dtype_of(draw, ALL[1:])
    kind = "float" if dt.kind == "f" else "int"
    lo = None if draw(st.integers(0, 3)) == 0 else scalar(draw, kind)
    hi = scalar(draw, kind) if lo is None or draw(st.booleans()) else None
    return Case((draw(arg(draw(shape()), dt)),), {"lo": lo, "hi": hi})


@st.composite
def _astype(draw: st.DrawFn) -> Case:
    """x and a target dtype: every pair of dtypes."""
    src, dst = dtype_of(draw, ALL), dtype_of(draw, ALL)
    return Case((draw(arg(draw(shape()), src)),), {"dtype": dst, "copy": draw(st.booleans())})


def _defined_casts(args: list, attrs: dict) -> np.ndarray:
    """The elements whose cast NumPy defines: a float becomes an integer only if it is finite
    and its truncation fits (otherwise C leaves the result undefined, and NumPy with it)."""
    x, dst = np.asarray(args[0]), np.dtype(attrs["dtype"])
    if x.dtype.kind != "f" or dst.kind not in "iu":
        return np.ones(x.shape, bool)
    info = np.iinfo(dst)
    t = np.trunc(x.astype(np.float64))
    with np.errstate(invalid="ignore"):
        return np.isfinite(t) & (t >= float(info.min)) & (t < float(info.max) + 1.0)


@st.composite
def _pair(draw: st.DrawFn, dtypes: tuple = FLOATS, attrs: st.SearchStrategy | None = None) -> Case:
    """(g, saved) of one shape and float dtype: an activation's backward op."""
    s, dt = draw(shape()), dtype_of(draw, dtypes)
    return Case((draw(arg(s, dt)), draw(arg(s, dt))), draw(attrs) if attrs is not None else {})


APPROX = st.fixed_dictionaries({"approximate": st.sampled_from(["none", "tanh"])})

SPECS: list[Spec] = (
    [unary(name, tol=EXACT) for name in EXACT_UNARY]
    + [unary(name, FLOATS, ulps(name)) for name in MATH_UNARY]
    + [binary(name) for name in EXACT_BINARY]
    + [
        binary("divide", ALL, ulps("divide")),
        binary("pow", ALL, ulps("pow")),
        binary("atan2", FLOATS, ulps("atan2")),
        binary("hypot", FLOATS, ulps("hypot")),
        binary("logaddexp", FLOATS, custom_bound(_logaddexp_bound, extra_ulps=8)),
        binary("copysign", FLOATS),
        binary("nextafter", FLOATS),
        Spec("where", _where()),
        Spec("clip", _clip()),
        Spec("astype", _astype(), Tol(mask=_defined_casts)),
        unary("sigmoid", FLOATS, Tol(ulps=12)),
        unary("gelu", FLOATS, custom_bound(_gelu_bound, extra_ulps=8), attrs=APPROX),
        Spec("relu_backward", _pair(FLOATS + INTS[:1])),
        Spec("sigmoid_backward", _pair(), custom_bound(_sigmoid_backward_bound, extra_ulps=4)),
        Spec("gelu_backward", _pair(attrs=APPROX), custom_bound(_gelu_backward_bound, extra_ulps=8)),
    ]
)

