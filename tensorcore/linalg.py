"""The Array API linear algebra extension (``tc.linalg``), 2023.12 signatures.

Every function takes a matrix or a stack of matrices (leading batch dimensions). The matrix
decompositions and solvers are ops (:mod:`tensorcore.ops.linalg_ext`); everything else is
built from ops (norms from ``abs``/``pow``/``sum``, ``matrix_power`` from ``matmul``, ``pinv``
from ``svd``), so all of it is differentiable and runs on any device.
"""

from __future__ import annotations

import math as _math
from typing import Any

import numpy as _np

from tensorcore.dtypes import real_dtype as _real_dtype
from tensorcore.errors import OpError as _OpError
from tensorcore.ops import arithmetic as _ar
from tensorcore.ops import logic as _lg
from tensorcore.ops import manipulation as _mp
from tensorcore.ops import math as _mt
from tensorcore.ops import reductions as _rd
from tensorcore.ops.complex_parts import conj as _conj
from tensorcore.ops.complex_parts import real as _real
from tensorcore.ops.creation import asarray as _asarray
from tensorcore.ops.indexing import getitem as _getitem
from tensorcore.ops.linalg import matmul, tensordot, vecdot
from tensorcore.ops.linalg_check import check_float as _check_float
from tensorcore.ops.linalg_check import check_matrix as _check_matrix
from tensorcore.ops.linalg_ext import (
    EighResult,
    QRResult,
    SlogdetResult,
    SVDResult,
    cholesky,
    det,
    eigh,
    eigvalsh,
    inv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
)
from tensorcore.ops.linalg_ext_grad import H as _H
from tensorcore.ops.manipulation import matrix_transpose
from tensorcore.tensor import Tensor

_ORDS = "'fro', 'nuc', 1, -1, 2, -2, inf or -inf"


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else _asarray(x)


def diagonal(x: Tensor, /, *, offset: int = 0) -> Tensor:
    """The ``offset``-th diagonal of each matrix (above the main one if positive), shape ``(..., K)``."""
    x = _tensor(x)
    m, n = _check_matrix("linalg.diagonal", x, square=False)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise _OpError(f"linalg.diagonal: offset must be an int, got {offset!r}")
    count = max(0, min(m + min(offset, 0), n - max(offset, 0)))
    rows = _asarray(_np.arange(count, dtype=_np.int64) + max(-offset, 0), device=x.device)
    cols = _asarray(_np.arange(count, dtype=_np.int64) + max(offset, 0), device=x.device)
    return _getitem(x, (Ellipsis, rows, cols))


def trace(x: Tensor, /, *, offset: int = 0, dtype: Any = None) -> Tensor:
    """Sum of the ``offset``-th diagonal of each matrix (integers widen to the default int)."""
    return _rd.sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def outer(x1: Tensor, x2: Tensor, /) -> Tensor:
    """Outer product of two 1-D tensors: ``out[i, j] = x1[i] * x2[j]``."""
    x1, x2 = _tensor(x1), _tensor(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise _OpError(f"linalg.outer: x1 has shape {x1.shape} and x2 has shape {x2.shape}; expected two 1-D tensors")
    return _ar.multiply(_mp.reshape(x1, (-1, 1)), _mp.reshape(x2, (1, -1)))


def cross(x1: Tensor, x2: Tensor, /, *, axis: int = -1) -> Tensor:
    """Cross product of 3-element vectors along ``axis`` (negative), broadcasting the other axes."""
    x1, x2 = _tensor(x1), _tensor(x2)
    low = -min(x1.ndim, x2.ndim)
    if not isinstance(axis, int) or isinstance(axis, bool) or not low <= axis <= -1:
        raise _OpError(
            f"linalg.cross: axis {axis!r} is invalid for shapes {x1.shape} and {x2.shape}; expected a "
            f"negative int with {low} <= axis <= -1"
        )
    if x1.shape[axis] != 3 or x2.shape[axis] != 3:
        raise _OpError(
            f"linalg.cross: axis {axis} has size {x1.shape[axis]} in x1 {x1.shape} and {x2.shape[axis]} in "
            f"x2 {x2.shape}; expected size 3 in both"
        )
    try:
        _np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise _OpError(f"linalg.cross: shapes {x1.shape} and {x2.shape} cannot be broadcast together") from None
    trail = (slice(None),) * (-axis - 1)
    a = [_getitem(x1, (Ellipsis, i) + trail) for i in range(3)]
    b = [_getitem(x2, (Ellipsis, i) + trail) for i in range(3)]
    parts = [_ar.subtract(_ar.multiply(a[(i + 1) % 3], b[(i + 2) % 3]), _ar.multiply(a[(i + 2) % 3], b[(i + 1) % 3])) for i in range(3)]
    return _mp.stack(parts, axis=axis)


def vector_norm(x: Tensor, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Tensor:  # noqa: A002
    """The ``ord``-norm of the vectors along ``axis`` (an int, a tuple, or None for all elements).

    ``ord`` is any non-zero real (``sum(|x|**ord) ** (1/ord)``), ``0`` (number of non-zeros),
    ``inf`` (max ``|x|``) or ``-inf`` (min ``|x|``). A complex ``x`` gives a real norm (of ``|x|``).
    """
    x = _tensor(x)
    _check_float("linalg.vector_norm", x)
    if ord == 2 and x.dtype.kind == "c":
        # |z|^2 as z * conj(z), smooth at 0 (|z| is not), then the root that is safe at 0
        return _root(_rd.sum(_abs2(x), axis=axis, keepdims=keepdims), 2)
    x = _modulus(x)
    if isinstance(ord, bool) or not isinstance(ord, (int, float)) or _math.isnan(ord):
        raise _OpError(f"linalg.vector_norm: ord must be a real number, inf or -inf, got {ord!r}")
    if ord == _math.inf:
        return _rd.max(_mt.abs(x), axis=axis, keepdims=keepdims)
    if ord == -_math.inf:
        return _rd.min(_mt.abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return _rd.sum(_lg.astype(_lg.not_equal(x, 0), x.dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return _rd.sum(_mt.abs(x), axis=axis, keepdims=keepdims)
    if ord == 2:
        return _root(_rd.sum(_ar.multiply(x, x), axis=axis, keepdims=keepdims), 2)
    return _root(_rd.sum(_ar.pow(_mt.abs(x), float(ord)), axis=axis, keepdims=keepdims), float(ord))


def _abs2(x: Tensor) -> Tensor:
    """``|x|^2`` elementwise, real: ``x * x``, or ``Re(x * conj(x))`` for a complex ``x``."""
    return _real(_ar.multiply(x, _conj(x))) if x.dtype.kind == "c" else _ar.multiply(x, x)


def _modulus(x: Tensor) -> Tensor:
    """``|x|`` for a complex tensor (real, of its precision), which is all an entrywise norm
    reads; a real tensor as it is."""
    return _mt.abs(x) if _np.dtype(x.dtype).kind == "c" else x


def _root(total: Tensor, p: float) -> Tensor:
    """``total ** (1 / p)``, whose gradient is 0 (not NaN) where ``total`` is 0 and ``p > 1``."""
    if p < 1:
        return _ar.pow(total, 1.0 / p)
    zero = _lg.equal(total, 0)
    safe = _lg.where(zero, 1.0, total)  # keeps the infinite slope at 0 out of the gradient
    return _lg.where(zero, 0.0, _mt.sqrt(safe) if p == 2 else _ar.pow(safe, 1.0 / p))


def matrix_norm(x: Tensor, /, *, keepdims: bool = False, ord: Any = "fro") -> Tensor:  # noqa: A002
    """A norm of each matrix: ``'fro'``, ``'nuc'`` (sum of singular values), ``2``/``-2`` (largest or
    smallest singular value), ``1``/``-1`` (max/min column sum of ``|x|``), ``inf``/``-inf`` (rows).
    A complex ``x`` gives a real norm, in the real dtype of its precision (float32 for complex64).
    """
    x = _tensor(x)
    _check_float("linalg.matrix_norm", x)
    _check_matrix("linalg.matrix_norm", x, square=False)
    if x.dtype.kind == "c" and ord in (1, -1, _math.inf, -_math.inf) and not isinstance(ord, bool):
        x = _modulus(x)  # these norms read |x| only; 'fro' squares the modulus, the rest are singular values
    if isinstance(ord, str):
        if ord == "fro":
            out = _root(_rd.sum(_abs2(x), axis=(-2, -1)), 2)
        elif ord == "nuc":
            out = _rd.sum(svdvals(x), axis=-1)
        else:
            raise _OpError(f"linalg.matrix_norm: unknown ord {ord!r}; expected {_ORDS}")
    elif isinstance(ord, bool) or ord not in (1, -1, 2, -2, _math.inf, -_math.inf):
        raise _OpError(f"linalg.matrix_norm: unknown ord {ord!r}; expected {_ORDS}")
    elif ord in (2, -2):
        out = (_rd.max if ord > 0 else _rd.min)(svdvals(x), axis=-1)
    else:
        lines = _rd.sum(_mt.abs(x), axis=-2 if ord in (1, -1) else -1)  # column sums for 1, row sums for inf
        out = (_rd.max if ord > 0 else _rd.min)(lines, axis=-1)
    return _mp.reshape(out, out.shape + (1, 1)) if keepdims else out


def matrix_power(x: Tensor, n: int, /) -> Tensor:
    """``x`` multiplied by itself ``n`` times (identity for 0; powers of ``inv(x)`` for negative n)."""
    x = _tensor(x)
    m, _ = _check_matrix("linalg.matrix_power", x, square=True)
    if not isinstance(n, (int, _np.integer)) or isinstance(n, bool):
        raise _OpError(f"linalg.matrix_power: n must be an int, got {n!r}")
    n = int(n)
    if n == 0:
        return _asarray(_np.broadcast_to(_np.eye(m, dtype=x.dtype), x.shape).copy(), device=x.device)
    if n < 0:
        x, n = inv(x), -n
    result, base = None, x
    while True:  # binary powering: about 2 log2(n) products
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if not n:
            return result
        base = matmul(base, base)


def _tolerance(name: str, x: Tensor, s: Tensor, rtol: Any) -> Tensor:
    """``rtol`` times the largest singular value, shape ``(..., 1)``; default rtol max(M, N) * eps."""
    if rtol is None:
        rtol = max(*x.shape[-2:]) * float(_np.finfo(x.dtype).eps)
    if isinstance(rtol, Tensor):  # compared with singular values: real, of x's precision
        rtol = _mp.expand_dims(_lg.astype(rtol, _real_dtype(x.dtype)), -1)
    elif isinstance(rtol, bool) or not isinstance(rtol, (int, float)):
        raise _OpError(f"{name}: rtol must be None, a float or a tensor, got {rtol!r}")
    return _ar.multiply(_rd.max(s, axis=-1, keepdims=True), rtol)


def matrix_rank(x: Tensor, /, *, rtol: Any = None) -> Tensor:
    """Number of singular values above ``rtol * max(S)`` for each matrix (int64)."""
    x = _tensor(x)
    _check_float("linalg.matrix_rank", x)
    _check_matrix("linalg.matrix_rank", x, square=False)
    s = svdvals(x)
    return _rd.sum(_lg.astype(_lg.greater(s, _tolerance("linalg.matrix_rank", x, s, rtol)), _np.int64), axis=-1)


def pinv(x: Tensor, /, *, rtol: Any = None) -> Tensor:
    """Moore-Penrose pseudo-inverse ``V diag(1/S) H(U)``, shape ``(..., N, M)``; singular values
    at or below ``rtol * max(S)`` are treated as zero. ``H`` is the conjugate transpose."""
    x = _tensor(x)
    _check_float("linalg.pinv", x)
    _check_matrix("linalg.pinv", x, square=False)
    u, s, vh = svd(x, full_matrices=False)
    keep = _lg.greater(s, _tolerance("linalg.pinv", x, s, rtol))
    s_inv = _lg.where(keep, _ar.divide(1.0, _lg.where(keep, s, 1.0)), 0.0)
    return matmul(_H(vh), _ar.multiply(_mp.expand_dims(s_inv, -1), _H(u)))


__all__ = [
    "EighResult", "QRResult", "SlogdetResult", "SVDResult",
    "cholesky", "cross", "det", "diagonal", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
    "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve",
    "svd", "svdvals", "tensordot", "trace", "vecdot", "vector_norm",
]
