"""Input validation of ``tc.linalg``: dtypes (which functions take complex) and matrix shapes.

Shared by the public functions, which check first so a wrong input is reported in terms of the
function that was called, and by the ops' shape rules (:mod:`tensorcore.ops.linalg_ext`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.dtypes import ComplexInputError
from tensorcore.errors import OpError

# Every op takes complex matrices (NumPy's LAPACK calls), with gradients for complex inputs
# (``complex_grad``, the convention of ``ops/complex_parts.py``). Eigenvalues, singular values
# and log-determinants are real: the real dtype of the input's precision (float32 for
# complex64), as the Array API asks. The public functions built on them (``tc.linalg``) take
# complex too. ``check_float`` still refuses complex for any name left out of this set.
COMPLEX_OK = frozenset({
    "linalg.cholesky", "linalg.inv", "linalg.solve", "linalg.det", "linalg.slogdet", "linalg.eigh",
    "linalg.eigvalsh", "linalg.qr", "linalg.svd", "linalg.svdvals", "linalg.vector_norm",
    "linalg.matrix_norm", "linalg.matrix_rank", "linalg.pinv",
})

_SQUARE = "a square matrix or a stack of square matrices, shape (..., M, M)"
_MATRIX = "a matrix or a stack of matrices, shape (..., M, N)"


def check_float(name: str, x: Any, what: str = "x", complex_ok: bool | None = None) -> None:
    """Raise unless ``x`` (a tensor or Spec) has a floating-point dtype: real, or also complex
    where ``complex_ok`` (by default: ``name`` is in ``COMPLEX_OK``; else ``ComplexInputError``)."""
    if complex_ok is None:
        complex_ok = name in COMPLEX_OK
    if np.dtype(x.dtype).kind == "c" and complex_ok:
        return
    if np.dtype(x.dtype).kind == "c":
        raise ComplexInputError(f"{name}: {what} has dtype {x.dtype}; {name} does not take complex inputs yet "
                                "(docs/array-api.md lists what does)")
    if np.dtype(x.dtype).kind != "f":
        raise OpError(
            f"{name}: {what} has dtype {x.dtype} (shape {tuple(x.shape)}), but {name} expects a "
            "floating-point tensor (float16, float32 or float64); cast it with astype() first"
        )


def check_matrix(name: str, x: Any, *, square: bool, what: str = "x") -> tuple[int, int]:
    """Raise unless ``x`` is a (square, if asked) matrix or stack of them; return (M, N)."""
    shape = tuple(x.shape)
    if len(shape) < 2 or (square and shape[-1] != shape[-2]):
        expected = _SQUARE if square else _MATRIX
        raise OpError(f"{name}: {what} has shape {shape}, but {name} expects {expected}")
    return shape[-2], shape[-1]


def checked(name: str, x: Any, square: bool = True) -> tuple[int, int]:
    """``check_float`` then ``check_matrix`` (square by default); return (M, N)."""
    check_float(name, x)
    return check_matrix(name, x, square=square)


def solve_shape(a: Any, b: Any) -> tuple[int, ...]:
    """The shape of ``solve(a, b)``; raises naming both shapes when they do not fit."""
    name = "linalg.solve"
    check_float(name, a, "x1", complex_ok=True)
    check_float(name, b, "x2", complex_ok=True)
    m, _ = check_matrix(name, a, square=True, what="x1")
    a_shape, b_shape = tuple(a.shape), tuple(b.shape)
    if len(b_shape) == 1:
        if b_shape[0] != m:
            raise OpError(f"{name}: x1 has shape {a_shape} and x2 has shape {b_shape}; expected x2 of shape ({m},)")
        return a_shape[:-1]
    if len(b_shape) == 0 or b_shape[-2] != m:
        raise OpError(
            f"{name}: x1 has shape {a_shape} and x2 has shape {b_shape}; expected x2 of shape ({m},) "
            f"or (..., {m}, K), with as many rows as x1"
        )
    try:
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise OpError(
            f"{name}: the batch dimensions of x1 {a_shape} and x2 {b_shape} cannot be broadcast together"
        ) from None
    return tuple(batch) + b_shape[-2:]
