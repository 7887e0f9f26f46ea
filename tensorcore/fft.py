"""The Array API Fourier transform extension (``tc.fft``), 2023.12 signatures (and 2024.12's
``dtype`` of ``fftfreq``/``rfftfreq``).

The transforms are four ops (:mod:`tensorcore.ops.fft`): ``fft``/``ifft`` are ``fftn``/``ifftn``
over one axis, ``rfft``/``irfft`` likewise; ``hfft`` and ``ihfft`` are ``irfft`` and ``rfft`` of
the conjugate with the opposite normalization (as NumPy defines them); ``fftshift`` and
``ifftshift`` are ``roll``. So every function is differentiable (the convention of
``docs/array-api.md``) and runs on every device: on ``cpu`` natively, elsewhere through the
``cpu`` fallback (soft placement; ``PlacementError`` under strict). Results keep the input's
precision: float32 and complex64 give complex64 (or float32), float64 and complex128 give
complex128 (or float64).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as _np

from tensorcore import dtypes as _dtypes
from tensorcore.errors import OpError as _OpError
from tensorcore.ops import fft as _ops
from tensorcore.ops.complex_parts import conj as _conj
from tensorcore.ops.creation import asarray as _asarray
from tensorcore.ops.manipulation import roll as _roll
from tensorcore.tensor import Tensor

Norm = Literal["backward", "ortho", "forward"]


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else _asarray(x)


def _checked(name: str, kind: str, x: Any, norm: Any) -> Tensor:
    """``x`` as a tensor, once its dtype is of ``kind`` (``"real"``, ``"complex"``) and ``norm`` is valid."""
    x = _tensor(x)
    _ops.check_kind(name, x.dtype, kind)
    _ops.check_norm(name, norm)
    return x


def _one(name: str, op: Any, kind: str, x: Any, n: Any, axis: Any, norm: Any, halved: bool = False) -> Tensor:
    """A 1-D transform: the n-D op over ``axis``, of length ``n``."""
    x = _checked(name, kind, x, norm)
    return _ops.transform(op, x, *_ops.resolve_one(name, x, n, axis, halved=halved), norm)


def _many(name: str, op: Any, kind: str, x: Any, s: Any, axes: Any, norm: Any, halved: bool = False) -> Tensor:
    """An n-D transform over ``axes``, of lengths ``s``."""
    x = _checked(name, kind, x, norm)
    return _ops.transform(op, x, *_ops.resolve(name, x, s, axes, halved_last=halved), norm)


def fft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The 1-D discrete Fourier transform of a complex ``x`` along ``axis``, cropped or
    zero-padded to ``n`` points first (None: the axis's length)."""
    return _one("fft.fft", _ops.FFTN, "complex", x, n, axis, norm)


def ifft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The 1-D inverse discrete Fourier transform of a complex ``x`` along ``axis`` (``n`` as in :func:`fft`)."""
    return _one("fft.ifft", _ops.IFFTN, "complex", x, n, axis, norm)


def fftn(x: Tensor, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
         norm: Norm = "backward") -> Tensor:
    """The n-D discrete Fourier transform of a complex ``x`` over ``axes`` (None: all), each
    cropped or zero-padded to its entry of ``s`` (None or -1: the axis's length)."""
    return _many("fft.fftn", _ops.FFTN, "complex", x, s, axes, norm)


def ifftn(x: Tensor, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: Norm = "backward") -> Tensor:
    """The n-D inverse discrete Fourier transform of a complex ``x`` (``s``, ``axes`` as in :func:`fftn`)."""
    return _many("fft.ifftn", _ops.IFFTN, "complex", x, s, axes, norm)


def rfft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The 1-D discrete Fourier transform of a real ``x``: the ``n // 2 + 1`` non-negative
    frequency bins (the others are their conjugates)."""
    return _one("fft.rfft", _ops.RFFTN, "real", x, n, axis, norm)


def irfft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The inverse of :func:`rfft`: ``n`` real points (None: ``2 * (m - 1)`` for ``m`` input
    bins) from the non-negative frequency bins of a complex ``x``."""
    return _one("fft.irfft", _ops.IRFFTN, "complex", x, n, axis, norm, halved=True)


def rfftn(x: Tensor, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: Norm = "backward") -> Tensor:
    """The n-D discrete Fourier transform of a real ``x``; the last of ``axes`` keeps
    ``s[-1] // 2 + 1`` bins."""
    return _many("fft.rfftn", _ops.RFFTN, "real", x, s, axes, norm)


def irfftn(x: Tensor, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
           norm: Norm = "backward") -> Tensor:
    """The inverse of :func:`rfftn`: a real tensor of lengths ``s`` (None or -1 on the last
    axis: ``2 * (m - 1)``) from a complex ``x``."""
    return _many("fft.irfftn", _ops.IRFFTN, "complex", x, s, axes, norm, halved=True)


def hfft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The real 1-D spectrum of a signal with Hermitian symmetry whose first half is the
    complex ``x``: ``irfft(conj(x))`` with the opposite normalization; ``n`` as in :func:`irfft`."""
    x = _checked("fft.hfft", "complex", x, norm)
    s, axes = _ops.resolve_one("fft.hfft", x, n, axis, halved=True)
    return _ops.transform(_ops.IRFFTN, _conj(x), s, axes, _ops.SWAP[norm])


def ihfft(x: Tensor, /, *, n: int | None = None, axis: int = -1, norm: Norm = "backward") -> Tensor:
    """The inverse of :func:`hfft` for a real ``x``: ``conj(rfft(x))`` with the opposite
    normalization, ``n // 2 + 1`` bins."""
    x = _checked("fft.ihfft", "real", x, norm)
    s, axes = _ops.resolve_one("fft.ihfft", x, n, axis)
    return _conj(_ops.transform(_ops.RFFTN, x, s, axes, _ops.SWAP[norm]))


def _frequencies(name: str, values: Any, n: Any, d: Any, dtype: Any, device: Any) -> Tensor:
    if not isinstance(n, (int, _np.integer)) or isinstance(n, bool) or n < 1:
        raise _OpError(f"{name}: n must be a positive int (the number of samples), got {n!r}")
    if isinstance(d, bool) or not isinstance(d, (int, float, _np.floating, _np.integer)) or d == 0:
        raise _OpError(f"{name}: d must be a non-zero real number (the sample spacing), got {d!r}")
    dt = _dtypes.DEFAULT_FLOAT if dtype is None else _dtypes.as_dtype(dtype)
    if not _dtypes.isdtype(dt, "real floating"):
        raise _OpError(f"{name}: dtype must be a real floating-point dtype (float32 or float64), got {dtype!r}")
    return _asarray(values(int(n), d=float(d)).astype(dt), device=device)


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Tensor:
    """The ``n`` sample frequencies of :func:`fft` for sample spacing ``d``:
    ``[0, 1, ..., n/2 - 1, -n/2, ..., -1] / (d * n)`` (for even ``n``), in the default float
    dtype unless ``dtype`` is given."""
    return _frequencies("fft.fftfreq", _np.fft.fftfreq, n, d, dtype, device)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Tensor:
    """The ``n // 2 + 1`` non-negative sample frequencies of :func:`rfft`: ``[0, 1, ..., n // 2] / (d * n)``."""
    return _frequencies("fft.rfftfreq", _np.fft.rfftfreq, n, d, dtype, device)


def _shift(name: str, x: Any, axes: Any, sign: int) -> Tensor:
    """``roll`` by ``sign * (length // 2)`` along each of ``axes`` (None: all axes)."""
    from tensorcore.ops._axes import normalize_axes

    x = _tensor(x)
    resolved = normalize_axes(name, axes, x.ndim)
    if not resolved:
        return x  # a 0-D tensor: nothing to shift
    return _roll(x, tuple(sign * (x.shape[a] // 2) for a in resolved), axis=resolved)


def fftshift(x: Tensor, /, *, axes: int | Sequence[int] | None = None) -> Tensor:
    """``x`` with the zero-frequency bin moved to the centre of each of ``axes`` (None: all axes)."""
    return _shift("fft.fftshift", x, axes, 1)


def ifftshift(x: Tensor, /, *, axes: int | Sequence[int] | None = None) -> Tensor:
    """The inverse of :func:`fftshift` (they differ for odd lengths)."""
    return _shift("fft.ifftshift", x, axes, -1)


__all__ = [
    "fft", "fftfreq", "fftn", "fftshift", "hfft", "ifft", "ifftn", "ifftshift", "ihfft", "irfft", "irfftn",
    "rfft", "rfftfreq", "rfftn",
]
