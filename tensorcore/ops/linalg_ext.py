"""The matrix decompositions and solvers of ``tc.linalg`` as ops with NumPy references.

cholesky, inv, solve, det, slogdet, eigh, eigvalsh, qr, svd and svdvals are primitive ops:
their ``cpu`` kernels call ``numpy.linalg`` and their gradients (in
:mod:`tensorcore.ops.linalg_ext_grad`) are written with tensorcore ops. Every op takes a
matrix or a stack of matrices (leading batch dimensions), real or complex. The public
functions validate shape and dtype first (:mod:`tensorcore.ops.linalg_check`), so a wrong input
is reported in terms of the function that was called; a singular or non positive-definite
matrix is reported the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from tensorcore.dispatch import apply
from tensorcore.dtypes import real_dtype
from tensorcore.errors import OpError
from tensorcore.ops import linalg_ext_grad as grads
from tensorcore.ops.linalg_check import COMPLEX_OK, checked, solve_shape
from tensorcore.ops.registry import Op, Spec, define
from tensorcore.tensor import Tensor


class EighResult(NamedTuple):
    """``eigh``'s result: eigenvalues in ascending order, eigenvectors as columns."""

    eigenvalues: Tensor
    eigenvectors: Tensor


class QRResult(NamedTuple):
    """``qr``'s result: ``Q`` with orthonormal columns, upper-triangular ``R``."""

    Q: Tensor  # noqa: N815 - Array API field name
    R: Tensor  # noqa: N815


class SlogdetResult(NamedTuple):
    """``slogdet``'s result: the sign of the determinant and the log of its absolute value."""

    sign: Tensor
    logabsdet: Tensor


class SVDResult(NamedTuple):
    """``svd``'s result: ``x == U @ diag(S) @ Vh``, singular values in descending order."""

    U: Tensor  # noqa: N815 - Array API field name
    S: Tensor  # noqa: N815
    Vh: Tensor  # noqa: N815


# --- references ----------------------------------------------------------------------------


def _lapack(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a numpy.linalg function; float16 (which LAPACK lacks) goes through float32."""

    def run(*arrays: Any, **attrs: Any) -> Any:
        arrays = tuple(np.asarray(a) for a in arrays)
        half = any(a.dtype == np.float16 for a in arrays)
        if half:
            arrays = tuple(a.astype(np.float32) for a in arrays)
        out = fn(*arrays, **attrs)
        outs = tuple(out) if isinstance(out, tuple) else (out,)
        outs = tuple(np.asarray(o).astype(np.float16) if half else np.asarray(o) for o in outs)
        return outs if isinstance(out, tuple) else outs[0]

    return run


def _which(x: np.ndarray, fn: Callable[[np.ndarray], Any]) -> str:
    """'the matrix' or 'matrix [i, j] of the stack': the first matrix on which ``fn`` fails."""
    if x.ndim == 2:
        return "the matrix"
    for index in np.ndindex(x.shape[:-2]):
        try:
            fn(x[index])
        except np.linalg.LinAlgError:
            return f"matrix {list(index)} of the stack"
    return "a matrix of the stack"


def _raising(name: str, fn: Callable[..., Any], problem: str, advice: str) -> Callable[..., Any]:
    """``fn``, with LAPACK's LinAlgError (shapes are checked before) turned into an OpError."""

    def run(x: np.ndarray, **attrs: Any) -> Any:
        try:
            return fn(x, **attrs)
        except np.linalg.LinAlgError:
            which = _which(np.asarray(x), lambda m: fn(m, **attrs))
            raise OpError(
                f"{name}: {which} (input shape {tuple(np.shape(x))}) is {problem}; {advice}"
            ) from None

    return run


def _solve_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if b.ndim == 1:
        return np.linalg.solve(a, b[:, None])[..., 0]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    return np.linalg.solve(np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:]))


def _solve_checked(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        return _solve_ref(a, b)
    except np.linalg.LinAlgError:
        which = _which(np.asarray(a), np.linalg.inv)
        raise OpError(
            f"linalg.solve: {which} in x1 (shape {tuple(a.shape)}) is singular, so the system has no "
            "unique solution; expected a non-singular x1 (use linalg.pinv for a least-squares solution)"
        ) from None


_INV_REF = _raising(
    "linalg.inv", np.linalg.inv, "singular (not invertible)",
    "expected a non-singular matrix (use linalg.pinv for a pseudo-inverse)",
)
_CHOL_REF = _raising(
    "linalg.cholesky", lambda x, upper: np.linalg.cholesky(x, upper=upper), "not positive definite",
    "expected a symmetric positive-definite matrix",
)


def _slogdet_ref(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The sign keeps the input's dtype (complex, of modulus 1, for a complex x); the log is real.
    sign, logabsdet = np.linalg.slogdet(x)
    return np.asarray(sign, dtype=x.dtype), np.asarray(logabsdet, dtype=real_dtype(x.dtype))


def _eigh_ref(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, v = np.linalg.eigh(x)
    return w, v


def _qr_ref(x: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    q, r = np.linalg.qr(x, mode=mode)
    return q, r


def _svd_ref(x: np.ndarray, full_matrices: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u, s, vh = np.linalg.svd(x, full_matrices=full_matrices)
    return u, s, vh


# --- shape rules ---------------------------------------------------------------------------


def _same(name: str) -> Callable[..., Spec]:
    def infer(x: Spec, **_: Any) -> Spec:
        checked(name, x)
        return Spec(x.shape, x.dtype)

    return infer


def _det_infer(name: str) -> Callable[..., Any]:
    def infer(x: Spec) -> Any:
        checked(name, x)
        out = Spec(tuple(x.shape[:-2]), x.dtype)
        return out if name == "linalg.det" else (out, Spec(out.shape, real_dtype(x.dtype)))

    return infer


def _eig_infer(name: str) -> Callable[..., Any]:
    def infer(x: Spec) -> Any:
        checked(name, x)
        w = Spec(tuple(x.shape[:-1]), real_dtype(x.dtype))  # Hermitian: real eigenvalues
        return w if name == "linalg.eigvalsh" else (w, Spec(tuple(x.shape), x.dtype))

    return infer


def _qr_infer(x: Spec, mode: str) -> tuple[Spec, Spec]:
    m, n = checked("linalg.qr", x, square=False)
    batch, k = tuple(x.shape[:-2]), (m if mode == "complete" else min(m, n))
    return Spec(batch + (m, k), x.dtype), Spec(batch + (k, n), x.dtype)


def _svd_infer(x: Spec, full_matrices: bool) -> tuple[Spec, Spec, Spec]:
    m, n = checked("linalg.svd", x, square=False)
    batch, k = tuple(x.shape[:-2]), min(m, n)
    u, v = (m, n) if full_matrices else (k, k)
    return Spec(batch + (m, u), x.dtype), Spec(batch + (k,), real_dtype(x.dtype)), Spec(batch + (v, n), x.dtype)


def _svdvals_infer(x: Spec) -> Spec:
    m, n = checked("linalg.svdvals", x, square=False)
    return Spec(tuple(x.shape[:-2]) + (min(m, n),), real_dtype(x.dtype))


def _solve_infer(a: Spec, b: Spec) -> Spec:
    return Spec(solve_shape(a, b), np.result_type(a.dtype, b.dtype))


# --- the ops -------------------------------------------------------------------------------


def _op(name: str, reference: Callable[..., Any], infer: Callable[..., Any], grad: Any, n: int = 1, doc: str = "") -> Op:
    # Each gradient is written for complex inputs too (conjugate transposes where the real
    # formula has transposes), and checked in tests/test_linalg_complex_grad.py.
    return define(Op(name, _lapack(reference), infer=infer, grad=grad, float_only=True,
                     real_only=name not in COMPLEX_OK, complex_grad=name in COMPLEX_OK, n_outputs=n, doc=doc))


_CHOLESKY = _op("linalg.cholesky", _CHOL_REF, _same("linalg.cholesky"), grads.cholesky_grad, doc="Cholesky factor.")
_INV = _op("linalg.inv", _INV_REF, _same("linalg.inv"), grads.inv_grad, doc="Matrix inverse.")
_SOLVE = _op("linalg.solve", _solve_checked, _solve_infer, grads.solve_grad, doc="Solve x1 @ X = x2.")
_DET = _op("linalg.det", np.linalg.det, _det_infer("linalg.det"), grads.det_grad, doc="Determinant.")
_SLOGDET = _op("linalg.slogdet", _slogdet_ref, _det_infer("linalg.slogdet"), grads.slogdet_grad, 2,
               doc="Sign and log-absolute value of the determinant.")
_EIGH = _op("linalg.eigh", _eigh_ref, _eig_infer("linalg.eigh"), grads.eigh_grad, 2,
            doc="Eigen-decomposition of a symmetric (Hermitian) matrix.")
_EIGVALSH = _op("linalg.eigvalsh", np.linalg.eigvalsh, _eig_infer("linalg.eigvalsh"), grads.eigvalsh_grad,
                doc="Eigenvalues of a symmetric (Hermitian) matrix.")
_QR = _op("linalg.qr", _qr_ref, _qr_infer, grads.qr_grad, 2, doc="QR decomposition.")
_SVD = _op("linalg.svd", _svd_ref, _svd_infer, grads.svd_grad, 3, doc="Singular value decomposition.")
_SVDVALS = _op("linalg.svdvals", lambda x: np.linalg.svd(x, compute_uv=False), _svdvals_infer, grads.svdvals_grad,
               doc="Singular values.")


def _tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from tensorcore.ops.creation import asarray

    return asarray(x)


# --- public functions ----------------------------------------------------------------------


def cholesky(x: Tensor, /, *, upper: bool = False) -> Tensor:
    """Cholesky factor of a symmetric (Hermitian) positive-definite matrix: ``L`` with ``x = L @ H(L)``.

    ``H`` is the conjugate transpose (``.mT`` for real ``x``). With ``upper=True``, the upper
    factor ``U = H(L)`` (``x = H(U) @ U``). Only the lower triangle of ``x`` is read; the
    gradient is that of the symmetric (Hermitian) input.
    """
    x = _tensor(x)
    checked("linalg.cholesky", x)
    return apply(_CHOLESKY, (x,), {"upper": bool(upper)})


def inv(x: Tensor, /) -> Tensor:
    """Inverse of a square matrix (raises ``OpError`` if it is singular)."""
    x = _tensor(x)
    checked("linalg.inv", x)
    return apply(_INV, (x,))


def solve(x1: Tensor, x2: Tensor, /) -> Tensor:
    """The solution ``X`` of ``x1 @ X = x2``; a 1-D ``x2`` is one right-hand-side vector."""
    x1, x2 = _tensor(x1), _tensor(x2)
    solve_shape(x1, x2)
    return apply(_SOLVE, (x1, x2))


def det(x: Tensor, /) -> Tensor:
    """Determinant of a square matrix (shape ``x.shape[:-2]``)."""
    x = _tensor(x)
    checked("linalg.det", x)
    return apply(_DET, (x,))


def slogdet(x: Tensor, /) -> SlogdetResult:
    """Sign and natural log of the absolute value of the determinant (``sign == 0`` if singular).

    For a complex ``x`` the sign is complex (``det / |det|``, of modulus 1) and ``logabsdet``
    is real, in the real dtype of ``x``'s precision.
    """
    x = _tensor(x)
    checked("linalg.slogdet", x)
    return SlogdetResult(*apply(_SLOGDET, (x,)))


def eigh(x: Tensor, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors (columns) of a symmetric (Hermitian) matrix.

    Only the lower triangle of ``x`` is read. The eigenvalues are real (float32 for complex64).
    Gradients need distinct eigenvalues, and, for complex eigenvectors, a loss that does not
    depend on their phases.
    """
    x = _tensor(x)
    checked("linalg.eigh", x)
    return EighResult(*apply(_EIGH, (x,)))


def eigvalsh(x: Tensor, /) -> Tensor:
    """Eigenvalues of a symmetric (Hermitian) matrix, in ascending order; real for complex ``x``."""
    x = _tensor(x)
    checked("linalg.eigvalsh", x)
    return apply(_EIGVALSH, (x,))


def qr(x: Tensor, /, *, mode: str = "reduced") -> QRResult:
    """QR decomposition ``x = Q @ R``; ``mode`` is ``'reduced'`` (Q is M x K) or ``'complete'`` (M x M).

    Gradients are defined for ``'reduced'`` (and ``'complete'`` when M <= N).
    """
    x = _tensor(x)
    checked("linalg.qr", x, square=False)
    if mode not in ("reduced", "complete"):
        raise OpError(f"linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    return QRResult(*apply(_QR, (x,), {"mode": mode}))


def svd(x: Tensor, /, *, full_matrices: bool = True) -> SVDResult:
    """Singular value decomposition ``x = U @ diag(S) @ Vh``, singular values descending.

    ``S`` is real (float32 for complex64). Gradients need distinct non-zero singular values
    and functions of ``U`` and ``Vh`` that do not depend on their signs (for complex ``x``, on
    the common phase of each pair of singular vectors); with ``full_matrices=True`` and a
    non-square ``x``, the extra columns of ``U`` (rows of ``Vh``) are not unique and get no gradient.
    """
    x = _tensor(x)
    checked("linalg.svd", x, square=False)
    return SVDResult(*apply(_SVD, (x,), {"full_matrices": bool(full_matrices)}))


def svdvals(x: Tensor, /) -> Tensor:
    """Singular values of a matrix, in descending order (shape ``(..., min(M, N))``); real for complex ``x``."""
    x = _tensor(x)
    checked("linalg.svdvals", x, square=False)
    return apply(_SVDVALS, (x,))


__all__ = [
    "EighResult", "QRResult", "SlogdetResult", "SVDResult",
    "cholesky", "inv", "solve", "det", "slogdet", "eigh", "eigvalsh", "qr", "svd", "svdvals",
]
