"""What a fuzzed op is: its case strategy (:class:`Case`: inputs and attributes), how close a
device must come to NumPy (:class:`Tol`), and how to call it. The tables (``table_*.py``)
hold one :class:`Spec` per op, built with the family helpers here.

Tolerances. Exact ops (integers, comparisons, movement, indexing, selection, rounding, IEEE's
correctly rounded ``+ - *``) must agree bit for bit: the same values, the same sign of zero,
NaN in the same places (NaN payloads are not compared). Elementwise math may differ by
``ulps`` units in the last place of the expected value: the OpenCL C specification's maximum
error for the builtin (OpenCL 3.0 §7.4, single precision; CUDA's are smaller) plus 4 ulps for
NumPy's own (its AVX-512 loops come from SVML, documented within 4 ulps). Sums and products of many
terms may differ by a rigorous rounding-error bound (``bound``): for a function that is a sum
of products, any evaluation order is within ``(K + 2) * eps * f(|a|, |b|, ...)`` of the exact
value, where ``K`` bounds the terms per output and ``f(|.|)`` is the op's reference run on the
absolute values (see :func:`abs_bound`). Both sides must still agree where the result is
inf or NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from fuzz.values import ALL, Arg, arg, broadcastable, scalar, shape

# The OpenCL C specification's maximum error in ulps (OpenCL 3.0, §7.4, float), plus NumPy's 4.
NUMPY_ULPS = 4
OPENCL_ULPS = {
    "exp": 3, "expm1": 3, "log": 3, "log2": 3, "log10": 3, "log1p": 2, "sqrt": 3, "divide": 2.5,
    "reciprocal": 2.5, "sin": 4, "cos": 4, "tan": 5, "asin": 4, "acos": 4, "atan": 5, "sinh": 4,
    "cosh": 4, "tanh": 5, "asinh": 4, "acosh": 4, "atanh": 5, "atan2": 6, "hypot": 4, "pow": 16,
}


@dataclass(frozen=True)
class Tol:
    """How close a device's result must be to NumPy's (see the module docstring)."""

    ulps: float = 0.0  # units in the last place of the expected value
    bound: Callable[..., Any] | None = None  # (numpy args, attrs, expected outputs) -> per-output absolute bounds
    signed_zeros: bool = True  # exact results: -0.0 and 0.0 must match too
    mask: Callable[..., Any] | None = None  # (numpy args, attrs) -> elements of output 0 that are defined
    normalize: Callable[..., Any] | None = None  # (outputs) -> outputs made comparable (signs of eigenvectors)

    @property
    def exact(self) -> bool:
        """Whether results must agree bit for bit."""
        return not self.ulps and self.bound is None


EXACT = Tol()
EXACT_UNSIGNED_ZERO = Tol(signed_zeros=False)


def ulps(name: str) -> Tol:
    """The tolerance of elementwise math op ``name``: OpenCL's maximum error plus NumPy's."""
    return Tol(ulps=OPENCL_ULPS[name] + NUMPY_ULPS)


def eps_of(dtype: Any) -> float:
    """Machine epsilon of a float dtype (integer results are compared exactly anyway)."""
    dt = np.dtype(dtype)
    return float(np.finfo(dt).eps) if dt.kind == "f" else 0.0


def abs_bound(terms: Callable[[list, dict], int] | int | None = None, extra_ulps: float = 2,
              keep: tuple[int, ...] = ()) -> Tol:
    """The rounding-error bound of a sum of products: ``(K + 2) * eps * reference(|args|)`` per
    output, with ``K = terms(args, attrs)`` (default: the largest input's size). The inputs at
    positions ``keep`` (indices, labels) are passed as they are."""

    def bound(op: Any, args: list, attrs: dict, expected: list) -> list:
        absolute = [np.abs(a).astype(np.float64 if a.dtype.kind == "f" else a.dtype)
                    if isinstance(a, np.ndarray) and i not in keep and a.dtype.kind in "fi" else a
                    for i, a in enumerate(args)]
        with np.errstate(all="ignore"):
            ref = op.reference(*absolute, **attrs)
        refs = list(ref) if isinstance(ref, tuple) else [ref]
        k = terms(args, attrs) if callable(terms) else terms
        if k is None:
            k = max([a.size for a in args if isinstance(a, np.ndarray)] + [1])
        return [(k + 2) * eps_of(np.asarray(e).dtype) * np.nan_to_num(np.abs(np.asarray(r, np.float64)), nan=np.inf)
                if np.asarray(e).dtype.kind == "f" else None for r, e in zip(refs, expected)]

    return Tol(ulps=extra_ulps, bound=bound)


def custom_bound(fn: Callable[..., Any], extra_ulps: float = 4) -> Tol:
    """A bound written for one op: ``fn(numpy args, attrs, eps)`` -> absolute bound(s)."""

    def bound(op: Any, args: list, attrs: dict, expected: list) -> list:
        e = next(np.asarray(x).dtype for x in expected)
        with np.errstate(all="ignore"):
            out = fn([np.asarray(a, np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                      for a in args], attrs, eps_of(e))
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        return [None if b is None else np.nan_to_num(np.asarray(b, np.float64), nan=np.inf) for b in out]

    return Tol(ulps=extra_ulps, bound=bound)


@dataclass
class Case:
    """One call: the inputs (:class:`Arg`, Python scalars or None) and the op's attributes."""

    args: tuple
    attrs: dict = field(default_factory=dict)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints draws with this
        printer.text(repr(self))

    def __repr__(self) -> str:
        inputs = "\n  ".join(repr(a) for a in self.args)
        return f"Case(attrs={self.attrs!r},\n  {inputs})"


@dataclass(frozen=True)
class Spec:
    """One op's fuzzing: ``cases`` draws a :class:`Case`; ``tol`` judges the result.

    ``inplace``: an in-place op, compared by what it writes into its target (and into the
    inputs the op's ``mutates`` names). ``call``/``reference`` replace the default calls
    (``dispatch.apply`` and ``op.reference``) for an op that needs a setup of its own.
    ``examples`` scales the default budget.
    """

    name: str
    cases: st.SearchStrategy
    tol: Tol = EXACT
    inplace: bool = False
    call: Callable[..., Any] | None = None
    reference: Callable[..., Any] | None = None
    examples: float = 1.0
    names: tuple[str, ...] = ()  # what its errors may call it instead (the public function's name)


# --- family helpers ---------------------------------------------------------------------------


def dtype_of(draw: st.DrawFn, pool: tuple) -> np.dtype:
    """A dtype drawn from ``pool``."""
    return np.dtype(draw(st.sampled_from(pool), label="dtype"))


def unary(name: str, dtypes: tuple = ALL, tol: Tol = EXACT, attrs: st.SearchStrategy | None = None,
          specials: str = "all", **kw: Any) -> Spec:
    """An elementwise op of one input: any shape and view, special values, attributes."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        x = draw(arg(draw(shape()), dtype_of(draw, dtypes), specials=specials))
        return Case((x,), draw(attrs) if attrs is not None else {})

    return Spec(name, cases(), tol, **kw)


def binary(name: str, dtypes: tuple = ALL, tol: Tol = EXACT, scalars: bool = True, mixed: bool = True,
           specials: str = "all", **kw: Any) -> Spec:
    """An elementwise op of two inputs: broadcasting pairs, views, mixed dtypes (NumPy's
    promotion) and Python scalars on either side (NEP 50: weakly typed)."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        out = draw(shape())
        d1 = dtype_of(draw, dtypes)
        d2 = dtype_of(draw, dtypes) if mixed and draw(st.integers(0, 3)) == 0 else d1
        args: list[Any] = [draw(arg(draw(broadcastable(out)), d, specials=specials)) for d in (d1, d2)]
        side = draw(st.integers(0, 5)) if scalars else 5
        if side < 2:  # a Python scalar of the other input's kind (or another kind, NumPy decides)
            other = args[1 - side].base.dtype
            kind = draw(st.sampled_from(["float", "int", "bool", {"b": "bool", "f": "float"}.get(other.kind, "int")]))
            args[side] = scalar(draw, kind)
        return Case(tuple(args))

    return Spec(name, cases(), tol, **kw)


__all__ = ["Arg", "Case", "Spec", "Tol", "EXACT", "EXACT_UNSIGNED_ZERO", "ulps", "abs_bound", "custom_bound",
           "unary", "binary", "dtype_of", "eps_of"]
