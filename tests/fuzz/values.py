"""Hypothesis strategies for op inputs: shapes, broadcasting pairs, values with special values
mixed in, and non-contiguous views that are built on the device with tensorcore ops.

An input is an :class:`Arg`: a base array plus the view steps (slices with steps, negative
strides, transposes, flips, broadcasts) that turn it into the op's input. The NumPy reference
gets ``Arg.numpy()``, the same steps taken with NumPy; a device gets the steps taken with
tensorcore ops on a copy of the base uploaded to it, so its kernels see real strided views.

Values are drawn in two layers: a seeded NumPy generator fills the array (dense, varied data,
cheap for hypothesis) and hypothesis places a few special values (±0, ±inf, NaN, subnormals,
the dtype's extremes) at chosen positions, which it can shrink when a test fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import tensorcore as tc
from tensorcore import dtypes

FLOATS = dtypes.FLOATING
INTS = dtypes.INTEGER
NUMERIC = dtypes.INTEGER + dtypes.FLOATING
ALL = dtypes.REAL  # the fuzz tests draw real dtypes: complex numbers are tests/test_complex*.py's
MAX_SIZE = 48  # elements of an op input: big enough for every layout, small enough to be fast


def special_values(dtype: np.dtype, level: str = "all") -> list:
    """The values that break kernels, for ``dtype``. ``level``: ``"all"`` (±0, ±1, ±inf, NaN,
    subnormals, the smallest normal, the largest values; an integer dtype's extremes);
    ``"nonextreme"`` (no values near overflow); ``"sums"`` (integers: all, floats: nonextreme, as
    whether a float sum overflows depends on the order of its additions); ``"products"`` (no
    subnormals or extremes either: their underflow depends on the order too); ``"finite"`` (no
    inf or NaN, no extremes); ``"none"``."""
    dt = np.dtype(dtype)
    if level == "sums":  # integers wrap the same in any order: all of them; floats: no extremes
        level = "all" if dt.kind in "iu" else "nonextreme"
    if level == "products":  # no subnormals or extremes either: their underflow depends on the order
        return [0, 1, 2, -1] if dt.kind == "i" else [0, 1, 2] if dt.kind == "u" else [True, False] if dt.kind == "b" \
            else [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, math.inf, -math.inf, math.nan]
    if level == "none":
        return []
    if dt.kind == "b":
        return [True, False]
    if dt.kind in "iu":
        info = np.iinfo(dt)
        small = [0, 1, 2] + ([-1] if info.min else [])
        return small if level != "all" else small + [int(info.max), int(info.min), int(info.max) - 1] + (
            [int(info.min) + 1] if info.min else [])
    fi = np.finfo(dt)
    out = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, float(fi.smallest_normal), -float(fi.smallest_subnormal),
           float(fi.smallest_subnormal), float(fi.smallest_normal) / 2]
    if level != "finite":
        out += [math.inf, -math.inf, math.nan]
    if level == "all":
        out += [float(fi.max), float(fi.min), float(fi.max) / 2]
    return out


def fill(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, kind: str,
         lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """See :func:`_fill`; always an array of ``dtype`` (0-d included), never a NumPy scalar."""
    with np.errstate(all="ignore"):
        return np.array(_fill(rng, shape, dtype, kind, lo, hi), dtype=dtype).reshape(shape)


def _fill(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, kind: str,
          lo: float | None, hi: float | None) -> np.ndarray:
    """Random values of ``kind``: ``normal`` (one random scale), ``halves`` (k / 2: ties, exact
    halves, repeats), ``wide`` (any magnitude the dtype holds), ``unitish`` (magnitudes in
    [0.5, 2], for products), ``full`` (integers over the whole range), ``small``, or ``range``
    (uniform in [lo, hi])."""
    dt = np.dtype(dtype)
    n = math.prod(shape)
    if dt.kind == "b":
        return (rng.random(shape) < rng.random()).astype(dt)
    if kind == "unitish" and dt.kind == "f":  # magnitudes in [0.5, 2]: products of 48 neither overflow nor underflow
        return (np.where(rng.random(shape) < 0.5, -1, 1) * rng.uniform(0.5, 2.0, shape)).astype(dt)
    if kind == "range":
        if dt.kind == "f":
            return rng.uniform(lo, hi, shape).astype(dt)
        return rng.integers(int(lo), int(hi), shape, endpoint=True).astype(dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if kind == "full":
            return rng.integers(int(info.min), int(info.max), shape, endpoint=True, dtype=dt)
        low = 0 if dt.kind == "u" else -9
        return rng.integers(low, 10, shape).astype(dt)
    fi = np.finfo(dt)
    if kind == "halves" or kind == "small":
        return (rng.integers(-8, 9, shape) / 2).astype(dt)
    if kind == "wide":
        exponent = rng.uniform(np.log10(float(fi.smallest_normal)), np.log10(float(fi.max)) - 0.01, n)
        return (np.where(rng.random(n) < 0.5, -1, 1) * 10.0 ** exponent).reshape(shape).astype(dt)
    return (rng.standard_normal(shape) * 10.0 ** int(rng.integers(-2, 3))).astype(dt)


@st.composite
def array(draw: st.DrawFn, shape: tuple[int, ...], dtype: Any, specials: str = "all", kind: str | None = None,
          lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """An array of ``shape`` and ``dtype``: :func:`fill`'s values (``kind`` drawn if None),
    with special values of :func:`special_values` at a few drawn positions."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    if kind is None:
        if dt.kind == "f":
            kinds = ["normal", "halves"] + (["wide"] if specials == "all" else [])
        else:
            kinds = ["small", "full"] if specials in ("all", "sums", "products") and dt.kind != "b" else ["small"]
        kind = draw(st.sampled_from(kinds), label="kind")
    out = fill(rng, shape, dt, kind, lo, hi)
    pool = special_values(dt, specials)
    n = out.size
    if pool and n and kind != "range":
        flat = out.reshape(-1)
        for pos, value in draw(st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(pool)), max_size=min(n, 6)),
                               label="specials"):
            flat[pos] = value
    return out


@st.composite
def shape(draw: st.DrawFn, min_dims: int = 0, max_dims: int = 5, min_side: int = 0, max_side: int = 5,
          max_size: int = MAX_SIZE) -> tuple[int, ...]:
    """A shape with 0- and 1-sized dimensions among the others, at most ``max_size`` elements."""
    dims = draw(st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims))
    while math.prod(dims) > max_size:  # shrink the largest side until the size fits
        k = dims.index(max(dims))
        dims[k] = max(min_side, dims[k] // 2)
    return tuple(dims)


@st.composite
def broadcastable(draw: st.DrawFn, out: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``out``: leading dimensions dropped, some sides set to 1."""
    drop = draw(st.integers(0, len(out)))
    return tuple(1 if draw(st.booleans()) else n for n in out[drop:])


# --- views ----------------------------------------------------------------------------------


@dataclass
class Arg:
    """One op input: ``base`` (contiguous) and the ``steps`` that make the input a view of it."""

    base: np.ndarray
    steps: tuple = ()

    def __post_init__(self) -> None:
        self.base = np.asarray(self.base)  # a 0-d array, never a NumPy scalar (which cannot be written in place)

    def numpy(self) -> np.ndarray:
        """The input as NumPy sees it: the steps taken on a fresh copy of the base."""
        x = self.base.copy()
        for kind, how in self.steps:
            x = {"permute": np.transpose, "flip": np.flip, "broadcast": np.broadcast_to}[kind](x, how) \
                if kind != "slice" else x[how]
        return x

    def tensor(self, device: str) -> tuple[tc.Tensor, tc.Tensor]:
        """(base tensor on ``device``, the input: the steps taken there with tensorcore ops)."""
        base = tc.asarray(self.base.copy(), device=device)
        x = base
        for kind, how in self.steps:
            if kind == "permute":
                x = tc.permute_dims(x, how)
            elif kind == "slice":
                x = x[how]
            elif kind == "flip":
                x = tc.flip(x, axis=how)
            else:
                x = tc.broadcast_to(x, how)
        return base, x

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints draws with this
        printer.text(repr(self))

    def __repr__(self) -> str:
        view = self.numpy()
        values = np.array2string(view, precision=9, threshold=64, separator=", ").replace("\n", "")
        how = " ".join(f"{k}{v}" for k, v in self.steps) or "contiguous"
        return f"{view.dtype}{list(view.shape)} ({how}, base {list(self.base.shape)}): {values}"


def _slice_for(n: int, step: int, offset: int, extra: int) -> tuple[int, slice]:
    """(base length, slice) that selects ``n`` elements with ``step`` from the base."""
    k = abs(step)
    length = offset + max(n - 1, 0) * k + (1 if n else 0) + extra
    if n == 0:
        return length, slice(0, 0, step)
    if step > 0:
        return length, slice(offset, offset + n * k, step)
    start = length - 1 - offset
    stop = start - n * k
    return length, slice(start, stop if stop >= 0 else None, step)


@st.composite
def view_steps(draw: st.DrawFn, shape: tuple[int, ...], broadcast: bool = True) -> tuple[tuple[int, ...], tuple]:
    """(base shape, steps) giving a view of ``shape``: contiguous, sliced with steps (negative
    ones too), transposed, flipped, broadcast (zero strides), or sliced then transposed."""
    nd = len(shape)
    kinds = ["contiguous", "slice", "flip"] + (["broadcast"] if broadcast else []) + (
        ["permute", "slice+permute"] if nd > 1 else [])
    kind = draw(st.sampled_from(kinds if nd else ["contiguous"]), label="view")
    steps: list = []
    cur = tuple(shape)
    if "permute" in kind:
        perm = tuple(draw(st.permutations(range(nd))))
        before = [0] * nd
        for i, p in enumerate(perm):
            before[p] = cur[i]
        cur = tuple(before)
        steps.insert(0, ("permute", perm))
    if "slice" in kind:
        key, lengths = [], []
        for n in cur:
            length, sl = _slice_for(n, draw(st.sampled_from([1, 2, 3, -1, -2])), draw(st.integers(0, 1)),
                                    draw(st.integers(0, 1)))
            key.append(sl)
            lengths.append(length)
        cur = tuple(lengths)
        steps.insert(0, ("slice", tuple(key)))
    if kind == "flip":
        axes = tuple(sorted(set(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd)))))
        steps.insert(0, ("flip", axes))
    if kind == "broadcast":
        ones = tuple(1 if draw(st.booleans()) else n for n in cur)
        if ones != cur:
            steps.insert(0, ("broadcast", cur))
            cur = ones
    return cur, tuple(steps)


@st.composite
def laid_out(draw: st.DrawFn, values: np.ndarray) -> Arg:
    """An input holding exactly ``values`` (a structured matrix, say), as a drawn view: the
    values are written through the view into a base of NaNs (so a kernel reading outside the
    view reads NaN)."""
    base_shape, steps = draw(view_steps(values.shape, broadcast=False))
    base = np.full(base_shape, np.nan, values.dtype) if values.dtype.kind == "f" else np.zeros(base_shape, values.dtype)
    arg_ = Arg(base, steps)
    view = base
    for kind, how in steps:  # NumPy views of the base: writing through them fills it
        view = np.transpose(view, how) if kind == "permute" else np.flip(view, how) if kind == "flip" else view[how]
    view[...] = values
    return arg_


@st.composite
def arg(draw: st.DrawFn, shape: tuple[int, ...], dtype: Any, views: bool = True, **values: Any) -> Arg:
    """An input of ``shape`` and ``dtype``, as a view when ``views`` (see :func:`view_steps`);
    ``values`` go to :func:`array`."""
    base_shape, steps = draw(view_steps(shape)) if views else (tuple(shape), ())
    return Arg(draw(array(base_shape, dtype, **values)), steps)


def scalar(draw: st.DrawFn, kind: str) -> Any:
    """A Python scalar of ``kind`` ("bool", "int" or "float"), special values included."""
    if kind == "bool":
        return draw(st.booleans())
    if kind == "int":
        return draw(st.one_of(st.integers(-9, 9), st.sampled_from([127, 255, -129, 2**31 - 1, 2**40, -(2**63)])))
    return draw(st.one_of(st.sampled_from([0.5, -0.0, 0.0, 2.0, math.inf, -math.inf, math.nan, 1e-40, 3e38, 1e300]),
                          st.floats(-1e3, 1e3, allow_nan=False)))
