"""Fuzz specs of the reductions (axis subsets, keepdims, accumulation dtypes), the cumulative
scans, searching (argmax, argmin, nonzero, searchsorted, count_nonzero), sorting and sets.

Sums, means and scans of floats are judged by the rounding-error bound of any summation order
(``abs_bound``), and their inputs carry no values near overflow (``specials="sums"``): whether
``max + max - max`` overflows depends on the order. Products draw magnitudes in [0.5, 2] and
no subnormals, for the same reason. Integer results, selections and orders are exact.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from fuzz.spec import EXACT, EXACT_UNSIGNED_ZERO, Case, Spec, abs_bound, custom_bound, dtype_of
from fuzz.values import ALL, FLOATS, NUMERIC, arg, array, shape
from fuzz.values import Arg as _Arg

INT64, UINT64 = np.dtype(np.int64), np.dtype(np.uint64)


def _sum_dtype(dt: np.dtype) -> np.dtype | None:
    """The accumulation dtype the public ``sum``/``prod`` pass: small integers widen (Array API)."""
    if dt.kind == "b" or (dt.kind == "i" and dt.itemsize < 8):
        return INT64
    if dt.kind == "u" and dt.itemsize < 8:
        return UINT64
    return None


@st.composite
def _axes(draw: st.DrawFn, ndim: int) -> tuple[int, ...]:
    """A sorted subset of the axes (all of them a third of the time)."""
    if draw(st.integers(0, 2)) == 0:
        return tuple(range(ndim))
    return tuple(sorted(set(draw(st.lists(st.integers(0, max(ndim - 1, 0)), max_size=ndim))))) if ndim else ()


def _reduced(args: list, attrs: dict) -> int:
    """Elements per output of a reduction over ``attrs["axis"]``."""
    x = np.asarray(args[0])
    return math.prod(x.shape[a] for a in attrs["axis"])


def reduction(name: str, dtypes: tuple, tol: object = EXACT, specials: str = "all", kind: str | None = None,
              dtype_attr: bool = False, nonempty: bool = False, extra: st.SearchStrategy | None = None) -> Spec:
    """``name(x, axis=<sorted tuple>, keepdims)``; ``dtype_attr``: also ``dtype`` (the public
    function's default or an explicit one); ``nonempty``: reduced axes of size >= 1 (max, min)."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        s = list(draw(shape()))
        axis = draw(_axes(len(s)))
        if nonempty:
            s = [max(n, 1) if i in axis else n for i, n in enumerate(s)]
        dt = dtype_of(draw, dtypes)
        attrs: dict = {"axis": axis, "keepdims": draw(st.booleans())}
        if dtype_attr:
            attrs["dtype"] = draw(st.sampled_from([_sum_dtype(dt), _sum_dtype(dt), np.dtype(np.float64),
                                                    np.dtype(np.float32), INT64]))
        if extra is not None:
            attrs.update(draw(extra))
        return Case((draw(arg(tuple(s), dt, specials=specials, kind=kind)),), attrs)

    return Spec(name, cases(), tol)


def _var_bound(args: list, attrs: dict, eps: float) -> np.ndarray:
    # Two passes: the mean's error and the squares' sum, each relative to the magnitudes involved.
    """var's error bound (see the comment below)."""
    x, axis = np.abs(args[0]), attrs["axis"]
    n = _reduced(args, attrs)
    scale = np.mean(x, axis=axis, keepdims=True) if x.size else np.zeros(())
    denom = max(n - attrs["correction"], 1) if n else 1
    total = np.sum((x + scale) ** 2, axis=axis, keepdims=attrs["keepdims"])
    return 4 * (n + 4) * eps * total / denom


def scan(name: str, tol: object, specials: str, kind: str | None) -> Spec:
    """``name(x, axis, dtype, include_initial)``: a running sum or product along one axis."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        s = draw(shape(min_dims=1))
        dt = dtype_of(draw, ALL)
        attrs = {"axis": draw(st.integers(0, len(s) - 1)), "include_initial": draw(st.booleans()),
                 "dtype": draw(st.sampled_from([_sum_dtype(dt), _sum_dtype(dt), np.dtype(np.float64)]))}
        return Case((draw(arg(s, dt, specials=specials, kind=kind)),), attrs)

    return Spec(name, cases(), tol)


@st.composite
def _cumprod_grad(draw: st.DrawFn) -> Case:
    """(x, g, axis) for cumulative_prod's gradient op."""
    s, dt = draw(shape(min_dims=1)), dtype_of(draw, FLOATS)
    return Case((draw(arg(s, dt, specials="products", kind="unitish")), draw(arg(s, dt, specials="products"))),
                {"axis": draw(st.integers(0, len(s) - 1))})


@st.composite
def _arg_extremum(draw: st.DrawFn) -> Case:
    """x and an axis (or None) with something to find, and keepdims."""
    s = list(draw(shape()))
    axis = draw(st.one_of(st.none(), st.integers(0, len(s) - 1))) if s else None
    s = [max(n, 1) if axis is None or i == axis else n for i, n in enumerate(s)]  # something to find
    return Case((draw(arg(tuple(s), dtype_of(draw, ALL))),), {"axis": axis, "keepdims": draw(st.booleans())})


def _along(name: str, stable: st.SearchStrategy) -> Spec:
    """sort/argsort: ``(x, axis, descending, stable)``."""

    @st.composite
    def cases(draw: st.DrawFn) -> Case:
        s = draw(shape(min_dims=1))
        attrs = {"axis": draw(st.integers(0, len(s) - 1)), "descending": draw(st.booleans()), "stable": draw(stable)}
        return Case((draw(arg(s, dtype_of(draw, ALL))),), attrs)

    # An unstable sort may put -0.0 and 0.0 (equal) in either order.
    return Spec(name, cases(), EXACT_UNSIGNED_ZERO if name == "sort" else EXACT)


@st.composite
def _searchsorted(draw: st.DrawFn) -> Case:
    """A sorted 1-D x1 (NaNs last), values x2 (a tensor or a Python scalar) and a side."""
    d1 = dtype_of(draw, NUMERIC)
    d2 = d1 if draw(st.booleans()) else dtype_of(draw, NUMERIC)
    x1 = _Arg(np.sort(draw(array((draw(st.integers(0, 12)),), d1))))  # sorted, NaNs last (NumPy's order)
    x2 = draw(arg(draw(shape()), d2)) if draw(st.integers(0, 4)) else draw(st.sampled_from([0, 1.5, -2, math.nan]))
    return Case((x1, x2), {"side": draw(st.sampled_from(["left", "right"]))})


@st.composite
def _one(draw: st.DrawFn, min_dims: int = 0) -> Case:
    """One input of any shape (at least ``min_dims``) and dtype."""
    return Case((draw(arg(draw(shape(min_dims=min_dims)), dtype_of(draw, ALL))),))


@st.composite
def _isin(draw: st.DrawFn) -> Case:
    """(x1, x2) with repeats and ties (halves), x2 a Python scalar now and then."""
    d1 = dtype_of(draw, ALL)
    d2 = d1 if draw(st.booleans()) else dtype_of(draw, ALL)
    x1 = draw(arg(draw(shape()), d1, kind="halves" if d1.kind == "f" else None))
    x2 = draw(arg(draw(shape(max_size=12)), d2, kind="halves" if d2.kind == "f" else None))
    if draw(st.integers(0, 4)) == 0:
        x2 = draw(st.sampled_from([0, 1, 2.5, -1]))
    return Case((x1, x2), {"invert": draw(st.booleans())})


SPECS: list[Spec] = [
    reduction("sum", ALL, abs_bound(_reduced), specials="sums", dtype_attr=True),
    reduction("prod", ALL, abs_bound(_reduced), specials="products", kind="unitish", dtype_attr=True),
    reduction("mean", FLOATS, abs_bound(_reduced), specials="sums"),
    reduction("max", ALL, nonempty=True),
    reduction("min", ALL, nonempty=True),
    reduction("var", FLOATS, custom_bound(_var_bound), specials="sums",
              extra=st.fixed_dictionaries({"correction": st.sampled_from([0.0, 1.0])})),
    reduction("all", ALL),
    reduction("any", ALL),
    reduction("count_nonzero", ALL),
    scan("cumulative_sum", abs_bound(lambda args, attrs: np.shape(args[0])[attrs["axis"]]), "sums", None),
    scan("cumulative_prod", abs_bound(lambda args, attrs: np.shape(args[0])[attrs["axis"]]), "products", "unitish"),
    Spec("cumulative_prod_grad", _cumprod_grad(), abs_bound(lambda args, attrs: 2 * np.shape(args[0])[attrs["axis"]])),
    Spec("argmax", _arg_extremum()),
    Spec("argmin", _arg_extremum()),
    Spec("nonzero", _one(min_dims=1)),
    Spec("searchsorted", _searchsorted()),
    _along("sort", st.booleans()),
    _along("argsort", st.just(True)),  # unstable: ties may come in any order, nothing to compare
    Spec("unique_values", _one()),
    Spec("unique_counts", _one()),
    Spec("unique_inverse", _one()),
    Spec("unique_all", _one()),
    Spec("isin", _isin()),
]
