"""Data types and the Array API type-promotion rules.

Tensorcore's dtype objects are NumPy's ``np.dtype`` instances: every backend library
(NumPy, PyOpenCL, CuPy) already speaks them, so reading ``x.dtype`` costs nothing and
needs no translation table.

``complex64`` and ``complex128`` compute natively on ``cpu`` only: on other devices a complex
tensor is stored as it is and its ops run on ``cpu`` (soft placement; ``docs/array-api.md``).
"""

from __future__ import annotations

import builtins
from typing import NamedTuple

import numpy as np

from tensorcore.errors import OpError

bool = np.dtype("bool")  # noqa: A001 - the Array API names this dtype `bool`
int8 = np.dtype("int8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
uint8 = np.dtype("uint8")
uint16 = np.dtype("uint16")
uint32 = np.dtype("uint32")
uint64 = np.dtype("uint64")
float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
complex64 = np.dtype("complex64")
complex128 = np.dtype("complex128")

SIGNED = (int8, int16, int32, int64)
UNSIGNED = (uint8, uint16, uint32, uint64)
INTEGER = SIGNED + UNSIGNED
FLOATING = (float16, float32, float64)  # the real floating dtypes
COMPLEX = (complex64, complex128)
REAL = (bool,) + INTEGER + FLOATING  # what every device computes in (and the fuzz tests draw)
ALL = REAL + COMPLEX
COMPLEX_SET = frozenset(COMPLEX)  # `dt in COMPLEX_SET`: the cheapest test of a dtype (hot paths)

DEFAULT_FLOAT = float32
DEFAULT_COMPLEX = complex64  # the spec: the default complex dtype has the default float's precision
DEFAULT_INT = int64
DEFAULT_INDEX = int64

_KINDS = {
    "bool": (bool,),
    "signed integer": SIGNED,
    "unsigned integer": UNSIGNED,
    "integral": INTEGER,
    "real floating": FLOATING,
    "complex floating": COMPLEX,
    "numeric": INTEGER + FLOATING + COMPLEX,
}
# The real dtype of each complex dtype's components, and the complex dtype holding a real one.
_COMPONENT = {complex64: float32, complex128: float64}
_COMPLEX_OF = {float16: complex64, float32: complex64, float64: complex128}


def as_dtype(dtype: object) -> np.dtype:
    """Return the tensorcore dtype for ``dtype`` (a dtype, its name, or a NumPy type)."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or dt not in ALL:
        names = ", ".join(d.name for d in ALL)
        raise TypeError(f"unsupported dtype {dtype!r}; expected one of: {names}")
    return dt


def dtype_of(x: object) -> np.dtype:
    """The dtype of a tensor, or ``x`` itself read as a dtype."""
    dt = getattr(x, "dtype", None)
    return as_dtype(x) if dt is None else dt


def real_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of a complex dtype's real and imaginary parts (float32 for complex64); a real
    dtype is returned as it is."""
    return _COMPONENT.get(dtype, dtype)


class ComplexInputError(OpError, TypeError):
    """A complex input to an op (or part of one) that takes only real dtypes. A ``TypeError``, as
    the Array API asks of real-only functions (``floor``, ``maximum``, ``sort``, ...) given
    complex numbers, and an ``OpError`` like every other input an op refuses."""


def check_real(name: str, inputs: tuple) -> None:
    """Raise :class:`ComplexInputError` if an input (a tensor, a Spec or a Python scalar) is
    complex: the check behind every real-only function (the Array API's "real-valued")."""
    for i, x in enumerate(inputs):
        if type(x) is complex or getattr(x, "dtype", None) in COMPLEX_SET:
            what = "a Python complex" if type(x) is complex else str(x.dtype)
            raise ComplexInputError(f"{name} is defined for real numbers only, but input {i} is {what}; take "
                                    "tc.real(), tc.imag() or tc.abs() of it first")


def isdtype(dtype: np.dtype, kind: object) -> bool:
    """Array API ``isdtype``: whether ``dtype`` is of ``kind`` (a dtype, kind name, or tuple)."""
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"unknown dtype kind {kind!r}; expected one of {sorted(_KINDS)}")
        return dtype in _KINDS[kind]
    return dtype == as_dtype(kind)


def _build_promotion_table() -> dict[tuple[np.dtype, np.dtype], np.dtype]:
    """The Array API's promotion lattice: within a kind only; no int/float mixing. Real and
    complex floats mix: the result is complex, as precise as the more precise of the two
    (float64 with complex64 gives complex128)."""
    table: dict[tuple[np.dtype, np.dtype], np.dtype] = {(bool, bool): bool}
    for group in (SIGNED, UNSIGNED, FLOATING, COMPLEX):
        for a in group:
            for b in group:
                table[a, b] = max(a, b, key=lambda d: d.itemsize)
    for f in FLOATING:
        for c in COMPLEX:
            table[f, c] = table[c, f] = max(c, _COMPLEX_OF[f], key=lambda d: d.itemsize)
    for u in UNSIGNED:
        for s in SIGNED:
            if s.itemsize > u.itemsize:
                wide = s
            elif u.itemsize < 8:
                wide = np.dtype(f"int{u.itemsize * 16}")
            else:
                continue  # uint64 with a signed int has no integer result
            table[u, s] = table[s, u] = wide
    return table


_PROMOTION = _build_promotion_table()


def result_type(*arrays_and_dtypes: object) -> np.dtype:
    """Array API ``result_type``: promote dtypes (and the dtypes of tensors) pairwise.

    As in 2024.12, Python scalars (``bool``, ``int``, ``float``, ``complex``) may be among the
    arguments. They are weakly typed: the tensors and dtypes decide the result, and a scalar only
    has to be of a kind the spec lets it mix with (``_promote_scalar``). At least one tensor or
    dtype is required, since scalars alone have no dtype in the standard.
    """
    # NumPy scalars (np.float64(1.0) even subclasses Python's float) carry a dtype: they count as
    # dtypes, not as weak Python scalars.
    scalars = [x for x in arrays_and_dtypes if _is_python_scalar(x)]
    dtypes = [dtype_of(x) for x in arrays_and_dtypes if not _is_python_scalar(x)]
    if not dtypes:
        raise ValueError("result_type needs at least one array or dtype")
    out = dtypes[0]
    for dt in dtypes[1:]:
        try:
            out = _PROMOTION[out, dt]
        except KeyError:
            raise TypeError(
                f"no Array API type promotion between {out} and {dt}; "
                "cast one of them explicitly with astype()"
            ) from None
    for value in scalars:
        out = _promote_scalar(out, value)
    return out


def _is_python_scalar(x: object) -> builtins.bool:
    """Whether ``x`` is a plain Python ``bool``/``int``/``float``/``complex`` (not a NumPy scalar)."""
    return isinstance(x, (int, float, complex)) and not isinstance(x, np.generic)


def _promote_scalar(dtype: np.dtype, value: builtins.bool | int | float | complex) -> np.dtype:
    """The dtype of ``dtype`` combined with the weakly typed Python scalar ``value``, by the
    spec's "mixing arrays with Python scalars" rules: a bool with bool; an int with an integer
    dtype (within its range) or a floating one; a float with a floating one; a complex with a
    complex one, or with a real float (the complex dtype of its precision, as the spec's 2024.12
    text and ``array_api_strict`` give). Every other mix is left undefined by the spec and
    raises ``TypeError``, as the dtype-only promotions do; an int out of an integer dtype's
    range raises ``OverflowError``."""
    if isinstance(value, builtins.bool):
        ok = dtype == bool
    elif isinstance(value, int):
        if dtype in INTEGER:
            info = np.iinfo(dtype)
            if not info.min <= value <= info.max:
                # OverflowError, as NumPy 2 and array_api_strict raise for such an operand.
                raise OverflowError(f"the Python int {value} is out of the range of {dtype} "
                                f"[{info.min}, {info.max}]")
            return dtype
        ok = dtype in FLOATING or dtype in COMPLEX_SET
    elif isinstance(value, float):
        ok = dtype in FLOATING or dtype in COMPLEX_SET
    else:
        if dtype in FLOATING:
            return _COMPLEX_OF[dtype]
        ok = dtype in COMPLEX_SET
    if not ok:
        raise TypeError(f"no Array API type promotion between {dtype} and the Python "
                        f"{type(value).__name__} {value!r}; cast explicitly with astype() or asarray()")
    return dtype


def can_cast(from_: object, to: object, /) -> bool:
    """Array API ``can_cast``: whether promotion from ``from_`` to ``to`` is lossless."""
    src = dtype_of(from_)
    dst = as_dtype(to)
    promoted = _PROMOTION.get((src, dst))
    return promoted is not None and promoted == dst  # (np.dtype == None is True: NumPy reads None as float64)


class finfo_object(NamedTuple):  # noqa: N801 - the spec's name
    """Machine limits of a floating dtype, with the spec's fields and types (Python floats,
    where NumPy's ``finfo`` gives NumPy scalars of the dtype)."""

    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: np.dtype


def finfo(type: object, /) -> finfo_object:  # noqa: A002 - Array API argument name
    """Machine limits of a floating dtype (or of a tensor's dtype). For a complex dtype, the
    spec's answer: the limits of its real components (``finfo(complex64).dtype`` is float32)."""
    dt = dtype_of(type)
    if dt.kind not in "fc":
        raise TypeError(f"finfo takes a floating-point dtype, got {dt}; use iinfo for integers")
    dt = real_dtype(dt)
    info = np.finfo(dt)
    return finfo_object(int(info.bits), float(info.eps), float(info.max), float(info.min),
                        float(info.smallest_normal), dt)


def iinfo(type: object, /) -> np.iinfo:  # noqa: A002
    """Machine limits of an integer dtype."""
    return np.iinfo(dtype_of(type))
