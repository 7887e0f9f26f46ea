"""The discrete Fourier transforms of ``tc.fft`` as ops with NumPy references.

Four primitive ops cover the extension: ``fft.fftn`` and ``fft.ifftn`` (complex to complex),
``fft.rfftn`` (real to complex, the non-negative half of the last axis) and ``fft.irfftn``
(its inverse, complex to real). Each takes resolved attributes: ``s`` (the transform length on
each axis), ``axes`` (non-negative, distinct) and ``norm``; :mod:`tensorcore.fft` resolves the
spec's defaults, and builds the 1-D functions, ``hfft``/``ihfft`` and the shifts from these ops
and others. Results keep the input's precision: float32 and complex64 give complex64 (or
float32 from ``irfftn``), float64 and complex128 give complex128 (float64).

Gradients (:mod:`tensorcore.ops.fft_grad`) are written with these ops, so they run on any device
and can be differentiated again. Only ``cpu`` has kernels: elsewhere dispatch falls back to
``cpu`` under soft placement (counted) and raises ``PlacementError`` under strict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.errors import OpError
from tensorcore.ops._axes import normalize_axis
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor

NORMS = ("backward", "ortho", "forward")
# The adjoint of a transform scaled by norm N is the opposite transform scaled by SWAP[N]:
# "backward" puts 1/n on the inverse, so the adjoint of an unscaled forward DFT is the inverse
# DFT with no 1/n, which is the inverse under "forward" (and "ortho" is its own adjoint).
SWAP = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


class FFTDtypeError(OpError, TypeError):
    """An input of the wrong kind for a transform: a real tensor where a complex-to-complex or
    complex-to-real transform expects complex numbers, or the other way round. A ``TypeError``
    as the Array API asks, and an ``OpError`` like every other input an op refuses."""


# --- dtypes -------------------------------------------------------------------------------


def complex_of(dtype: Any) -> np.dtype:
    """The complex dtype of ``dtype``'s precision (complex64 for float16, float32, complex64)."""
    return np.dtype(np.complex128 if np.dtype(dtype) in (np.float64, np.complex128) else np.complex64)


def real_of(dtype: Any) -> np.dtype:
    """The real dtype of ``dtype``'s precision (float32 for complex64)."""
    return np.dtype(np.float64 if np.dtype(dtype) in (np.float64, np.complex128) else np.float32)


def check_kind(name: str, dtype: Any, kind: str) -> None:
    """Raise :class:`FFTDtypeError` unless ``dtype`` is of ``kind``: ``"complex"`` (complex64,
    complex128) or ``"real"`` (a real floating-point dtype)."""
    dt = np.dtype(dtype)
    if (dt.kind == "c") if kind == "complex" else (dt.kind == "f"):
        return
    want = "complex64 or complex128" if kind == "complex" else "float32 or float64"
    hint = ("convert it with astype(x, complex64) or astype(x, complex128)" if kind == "complex" else
            "take tc.real() of a complex tensor, or astype() an integer one to a float dtype")
    raise FFTDtypeError(f"{name}: x has dtype {dt}, but {name} takes {kind} floating-point inputs ({want}); {hint}")


# --- argument resolution, shared with tensorcore/fft.py -----------------------------------


def check_norm(name: str, norm: Any) -> None:
    """Raise unless ``norm`` is one of the spec's three normalizations."""
    if not isinstance(norm, str) or norm not in NORMS:
        raise OpError(f"{name}: norm must be 'backward', 'ortho' or 'forward', got {norm!r}")


def _length(name: str, what: str, value: Any, default: int, where: str, *, minus_one: bool) -> int:
    """A transform length: a positive int; ``default`` for None (and for -1 where ``minus_one``,
    as the spec's ``s`` allows)."""
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if value is None or (minus_one and is_int and value == -1):
        value, is_int = default, True
    if not is_int or value < 1:
        options = "None or -1" if minus_one else "None"
        raise OpError(f"{name}: {what} must be a positive int ({options} for the default, here {default}), "
                      f"got {value!r}; {where}")
    return int(value)


def resolve(name: str, x: Tensor, s: Any, axes: Any, *, halved_last: bool = False) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The spec's ``s`` and ``axes`` as (sizes, axes): axes non-negative and distinct (all axes
    when None; ``s`` then must be None too); each size the input's length where ``s`` is None
    or -1. ``halved_last``: the input's last transformed axis holds ``m // 2 + 1`` bins of a
    real signal, whose default length is ``2 * (m - 1)`` (``irfftn``)."""
    if axes is None:
        if s is not None:
            raise OpError(f"{name}: s is given but axes is not; pass axes too, one per entry of s (the spec requires both)")
        axes = tuple(range(x.ndim))
    elif not isinstance(axes, Sequence) or isinstance(axes, str):
        raise OpError(f"{name}: axes must be a sequence of ints such as (0, 1), or None, got {axes!r}")
    resolved = tuple(normalize_axis(name, a, x.ndim) for a in axes)
    if not resolved:
        raise OpError(f"{name}: no axis to transform: x has shape {tuple(x.shape)} and axes is {tuple(axes)!r}")
    if len(set(resolved)) != len(resolved):
        raise OpError(f"{name}: repeated axis in axes {tuple(axes)!r} for a {x.ndim}-D tensor; each axis must appear once")
    if s is not None and (not isinstance(s, Sequence) or len(s) != len(resolved)):
        raise OpError(f"{name}: s must be a sequence with one length per axis in {tuple(axes)!r}, got {s!r}")
    sizes = []
    for i, a in enumerate(resolved):
        m = x.shape[a]
        default = 2 * (m - 1) if halved_last and i == len(resolved) - 1 else m
        sizes.append(_length(name, f"s[{i}]", None if s is None else s[i], default, f"axis {a} has length {m}",
                             minus_one=True))
    return tuple(sizes), resolved


def resolve_one(name: str, x: Tensor, n: Any, axis: Any, *, halved: bool = False) -> tuple[tuple[int], tuple[int]]:
    """(sizes, axes) of a 1-D transform: ``n`` (None for the input's length, or ``2 * (m - 1)``
    where ``halved``) along ``axis``."""
    if x.ndim == 0:
        raise OpError(f"{name}: x is 0-D; a Fourier transform needs at least one axis")
    a = normalize_axis(name, axis, x.ndim)
    m = x.shape[a]
    default = 2 * (m - 1) if halved else m
    return (_length(name, "n", n, default, f"axis {a} has length {m}", minus_one=False),), (a,)


# --- the ops ------------------------------------------------------------------------------


def _out_shape(shape: Sequence[int], s: tuple[int, ...], axes: tuple[int, ...], halved: bool) -> tuple[int, ...]:
    """``shape`` with each of ``axes`` of length ``s`` (the last ``s[-1] // 2 + 1`` if ``halved``)."""
    out = list(shape)
    for a, n in zip(axes, s):
        out[a] = n
    if halved:
        out[axes[-1]] = s[-1] // 2 + 1
    return tuple(out)


def _rule(name: str, kind: str, halved: bool, to_real: bool) -> Any:
    def infer(x: Spec, *, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Spec:
        check_kind(name, x.dtype, kind)
        check_norm(name, norm)
        if x.shape is None:
            return Spec(None, real_of(x.dtype) if to_real else complex_of(x.dtype))
        shape = _out_shape(x.shape, s, axes, halved)
        return Spec(shape, real_of(x.dtype) if to_real else complex_of(x.dtype))

    return infer


def _reference(fn: Any, to_real: bool) -> Any:
    def run(x: np.ndarray, *, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> np.ndarray:
        out = fn(x, s=s, axes=axes, norm=norm)
        return out.astype(real_of(x.dtype) if to_real else complex_of(x.dtype), copy=False)

    return run


def _define(name: str, fn: Any, kind: str, *, halved: bool, to_real: bool, doc: str) -> Op:
    from tensorcore.ops import fft_grad

    return define(Op(f"fft.{name}", _reference(fn, to_real), infer=_rule(f"fft.{name}", kind, halved, to_real),
                     grad=getattr(fft_grad, f"{name}_grad"), complex_grad=True, doc=doc))


FFTN = _define("fftn", np.fft.fftn, "complex", halved=False, to_real=False,
               doc="The n-D discrete Fourier transform of a complex tensor over axes, lengths s.")
IFFTN = _define("ifftn", np.fft.ifftn, "complex", halved=False, to_real=False,
                doc="The n-D inverse discrete Fourier transform of a complex tensor.")
RFFTN = _define("rfftn", np.fft.rfftn, "real", halved=True, to_real=False,
                doc="The n-D DFT of a real tensor: the last axis keeps s[-1] // 2 + 1 bins.")
IRFFTN = _define("irfftn", np.fft.irfftn, "complex", halved=False, to_real=True,
                 doc="The inverse of rfftn: a real tensor of lengths s from the non-negative bins.")


def transform(op: Op, x: Tensor, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Tensor:
    """Run one of the four ops with resolved attributes."""
    return apply(op, (x,), {"s": s, "axes": axes, "norm": norm})


__all__: list[str] = []  # the public functions are tc.fft's (tensorcore/fft.py)
