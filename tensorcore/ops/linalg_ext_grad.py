"""Reverse-mode gradients of the ``tc.linalg`` decompositions and solvers.

Each gradient is the standard matrix-calculus result, written with tensorcore ops so it runs
on any device and can itself be differentiated. Notation: ``g`` is the gradient of an output,
``H`` the conjugate transpose of the last two axes (the plain transpose for real tensors),
``herm(A) = (A + H(A)) / 2``. Inputs that only make sense as symmetric (Hermitian) matrices
(cholesky, eigh) get a symmetric (Hermitian) gradient.

Complex inputs follow the convention of ``ops/complex_parts.py`` (PyTorch's and JAX's): for a
real loss ``L`` the gradient of ``z = x + iy`` is ``dL/dx + i dL/dy``. With the inner product
``Re tr(A^H B)`` the real derivations carry over with every transpose a conjugate transpose;
the few places where they do not (the imaginary parts that a gauge or a real constraint
removes: QR's real diagonal of ``R``, the phases of singular vectors, the sign of a complex
determinant) are commented where they occur.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.errors import GradientError
from tensorcore.ops.arithmetic import add, divide, multiply, negative, subtract, sum_to_shape
from tensorcore.ops.complex_parts import conj_of, imag, real
from tensorcore.ops.indexing import getitem
from tensorcore.ops.linalg import matmul
from tensorcore.ops.logic import astype, equal, where
from tensorcore.ops.manipulation import concat, expand_dims, matrix_transpose, reshape
from tensorcore.tensor import Tensor


def H(a: Tensor) -> Tensor:  # noqa: N802 - the usual name of the conjugate transpose
    """The conjugate transpose of the last two axes (the transpose of a real tensor)."""
    return conj_of(matrix_transpose(a))


def _const(array: np.ndarray, like: Tensor) -> Tensor:
    """A constant with ``like``'s dtype, on ``like``'s device."""
    from tensorcore.ops.creation import asarray

    return asarray(array.astype(like.dtype), device=like.device)


def _herm(a: Tensor) -> Tensor:
    """The Hermitian part ``(a + H(a)) / 2`` (the symmetric part of a real ``a``)."""
    return multiply(add(a, H(a)), 0.5)


def _cast(g: Tensor, x: Tensor) -> Tensor:
    """``g`` in ``x``'s dtype (mixed-precision inputs promote the result). A complex ``g`` of a
    real ``x`` stays complex: backprop keeps its real part, the real input's gradient."""
    if g.dtype == x.dtype or (g.dtype.kind == "c" and x.dtype.kind != "c"):
        return g
    return astype(g, x.dtype)


def _safe_reciprocal(d: Tensor) -> Tensor:
    """``1 / d`` where ``d != 0``, else 0 (degenerate terms drop out instead of giving NaN)."""
    zero = equal(d, 0)
    return where(zero, 0.0, divide(1.0, where(zero, 1.0, d)))


def _inverse_gaps(w: Tensor) -> Tensor:
    """``F[..., i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (and for equal values)."""
    return _safe_reciprocal(subtract(expand_dims(w, -2), expand_dims(w, -1)))


def _diag(v: Tensor) -> Tensor:
    """The (stack of) diagonal matrices with ``v`` on the diagonal."""
    n = v.shape[-1]
    return multiply(expand_dims(v, -1), _const(np.eye(n), v))


def _scalar_to_matrix(g: Tensor) -> Tensor:
    """A per-matrix value of shape ``batch`` as shape ``batch + (1, 1)``."""
    return reshape(g, tuple(g.shape) + (1, 1))


def cholesky_grad(ctx: Any, g: Tensor) -> tuple:
    """``x = L H(L)``: ``x_bar = herm(H(L)^-1 Phi(H(L) L_bar) L^-1)``, Phi = lower triangle, half diagonal.

    For a complex ``x`` only the Hermitian part counts (LAPACK reads the lower triangle and
    the real diagonal), so ``herm`` also drops the imaginary part of Phi's diagonal.
    """
    from tensorcore.ops.linalg_ext import solve

    upper = ctx.attrs["upper"]
    factor = H(ctx.output) if upper else ctx.output
    g = H(g) if upper else g
    n = factor.shape[-1]
    phi = multiply(matmul(H(factor), g), _const(np.tril(np.ones((n, n))) - 0.5 * np.eye(n), factor))
    lh = H(factor)
    right = H(solve(lh, H(phi)))  # phi @ L^-1
    return (_herm(solve(lh, right)),)


def inv_grad(ctx: Any, g: Tensor) -> tuple:
    """``y = x^-1``: ``x_bar = -H(y) g H(y)``."""
    yh = H(ctx.output)
    return (negative(matmul(matmul(yh, g), yh)),)


def solve_grad(ctx: Any, g: Tensor) -> tuple:
    """``X = A^-1 B``: ``B_bar = H(A)^-1 g`` and ``A_bar = -B_bar H(X)`` (summed over broadcasting)."""
    from tensorcore.ops.linalg_ext import solve

    a, b = ctx.inputs
    x = ctx.output
    if b.ndim == 1:  # one right-hand side vector: work with it as an (M, 1) matrix
        gb = solve(H(a), expand_dims(g, -1))
        ga = negative(matmul(gb, expand_dims(conj_of(x), -2)))
        gb = reshape(gb, gb.shape[:-1])
    else:
        gb = solve(H(a), g)
        ga = negative(matmul(gb, H(x)))
    ga = _cast(sum_to_shape(ga, a.shape), a) if ctx.needs_grad[0] else None
    gb = _cast(sum_to_shape(gb, b.shape), b) if ctx.needs_grad[1] else None
    return ga, gb


def det_grad(ctx: Any, g: Tensor) -> tuple:
    """``d = det(x)``: ``x_bar = g conj(d) H(x^-1)`` (needs a non-singular x)."""
    from tensorcore.ops.linalg_ext import inv

    x = ctx.inputs[0]
    return (multiply(_scalar_to_matrix(multiply(g, conj_of(ctx.output))), H(inv(x))),)


def slogdet_grad(ctx: Any, g_sign: Tensor, g_logabsdet: Tensor) -> tuple:
    """``log|det x|`` has gradient ``H(x^-1)``. A real sign is piecewise constant; a complex one,
    ``sign = det / |det|``, turns with ``Im tr(x^-1 dx)`` and adds ``-i Im(conj(sign_bar) sign) H(x^-1)``."""
    from tensorcore.ops.linalg_ext import inv

    x = ctx.inputs[0]
    coefficient = g_logabsdet
    if x.dtype.kind == "c":
        # d sign = i sign Im tr(x^-1 dx), so dL = Re(-i c tr(x^-1 dx)) with c = Im(conj(g_sign) sign)
        turn = imag(multiply(conj_of(g_sign), ctx.outputs[0]))
        coefficient = subtract(astype(g_logabsdet, x.dtype), multiply(astype(turn, x.dtype), 1j))
    return (multiply(_scalar_to_matrix(coefficient), H(inv(x))),)


def eigh_grad(ctx: Any, gw: Tensor, gv: Tensor) -> tuple:
    """``x = V diag(w) H(V)``: ``x_bar = herm(V (diag(w_bar) + F o (H(V) V_bar)) H(V))``.

    ``F[i, j] = 1 / (w[j] - w[i])``; eigenvector gradients need distinct eigenvalues. A complex
    eigenvector's phase is free, so only losses that do not depend on it have a gradient; for
    them the imaginary diagonal of ``H(V) V_bar`` is 0, which ``F``'s zero diagonal drops anyway.
    """
    w, v = ctx.outputs
    inner = add(_diag(gw), multiply(_inverse_gaps(w), matmul(H(v), gv)))
    return (_herm(matmul(matmul(v, inner), H(v))),)


def eigvalsh_grad(ctx: Any, gw: Tensor) -> tuple:
    """``x_bar = V diag(w_bar) H(V)``, with ``V`` from ``eigh(x)``."""
    from tensorcore.ops.linalg_ext import eigh

    v = eigh(ctx.inputs[0]).eigenvectors
    return (matmul(multiply(v, expand_dims(gw, -2)), H(v)),)


def _qr_tall(q: Tensor, r: Tensor, gq: Tensor, gr: Tensor) -> Tensor:
    """Reduced QR with M >= N: ``x_bar = (Q_bar + Q K) H(R)^-1``.

    ``K`` is the Hermitian matrix whose strict upper triangle is that of
    ``N = R_bar H(R) - H(Q) Q_bar`` and whose diagonal is ``Re diag(N)``: LAPACK's ``R`` has a
    real diagonal, so the imaginary part of ``diag(H(Q) dx R^-1)`` moves ``Q`` only.
    """
    from tensorcore.ops.linalg_ext import solve

    k = r.shape[-1]
    n_mat = subtract(matmul(gr, H(r)), matmul(H(q), gq))
    strict = multiply(n_mat, _const(np.triu(np.ones((k, k)), 1), r))
    diagonal = real(multiply(n_mat, _const(np.eye(k), r)))
    z = add(gq, matmul(q, add(add(strict, H(strict)), diagonal)))
    return H(solve(r, H(z)))  # z @ H(R)^-1


def qr_grad(ctx: Any, gq: Tensor, gr: Tensor) -> tuple:
    """QR gradient for M >= N (reduced), and M < N by splitting ``x = [X | Y]``."""
    x = ctx.inputs[0]
    q, r = ctx.outputs
    m, n = x.shape[-2:]
    if ctx.attrs["mode"] == "complete" and m > n:
        raise GradientError(
            f"linalg.qr: no gradient for mode='complete' with M > N (input shape {x.shape}): the last "
            f"{m - n} columns of Q are not unique; use mode='reduced'"
        )
    if m >= n:
        return (_qr_tall(q, r, gq, gr),)
    # M < N: X = Q R_x is a square QR and Y = Q R_y, so R_y also depends on Q.
    left, right = (Ellipsis, slice(None), slice(0, m)), (Ellipsis, slice(None), slice(m, None))
    y, gr_y = getitem(x, right), getitem(gr, right)
    gx = _qr_tall(q, getitem(r, left), add(gq, matmul(y, H(gr_y))), getitem(gr, left))
    return (concat([gx, matmul(q, gr_y)], axis=-1),)


def _svd_thin(u: Tensor, s: Tensor, vh: Tensor, gu: Tensor, gs: Tensor, gvh: Tensor) -> Tensor:
    """Thin SVD ``x = U diag(S) Vh`` (U: M x K, Vh: K x N, K = min(M, N)).

    ``x_bar = U [ (F o (J - H(J))) S + S (F o (L - H(L))) + diag(S_bar) + P ] Vh
    + (I - U H(U)) U_bar S^-1 Vh + U S^-1 H(V_bar) (I - V Vh)`` with ``J = H(U) U_bar``,
    ``L = Vh V_bar`` (``V_bar = H(Vh_bar)``) and ``F[i, j] = 1 / (S[j]^2 - S[i]^2)``.

    ``P`` is 0 for real ``x``. For complex ``x`` each pair of singular vectors has a free common
    phase, and a loss that does not depend on it has ``Im J[i, i] = Im L[i, i]``; the change
    of ``x`` that turns the pair against each other gives ``P = i diag(Im (J - L)[i, i] / (2 S[i]))``.
    """
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    f = _inverse_gaps(multiply(s, s))
    j = matmul(H(u), gu)
    ell = matmul(vh, H(gvh))
    inner = add(
        add(multiply(multiply(f, subtract(j, H(j))), expand_dims(s, -2)),
            multiply(expand_dims(s, -1), multiply(f, subtract(ell, H(ell))))),
        _diag(gs),
    )
    s_inv = _safe_reciprocal(s)
    if u.dtype.kind == "c":
        eye = _const(np.eye(k), s)
        turn = _diag(multiply(_rd_sum_last(multiply(imag(subtract(j, ell)), eye)), multiply(s_inv, 0.5)))
        inner = add(inner, multiply(astype(turn, u.dtype), 1j))
    ga = matmul(matmul(u, inner), vh)
    if m > k:
        ga = add(ga, matmul(multiply(subtract(gu, matmul(u, j)), expand_dims(s_inv, -2)), vh))
    if n > k:
        ga = add(ga, matmul(u, multiply(expand_dims(s_inv, -1), subtract(gvh, matmul(H(ell), vh)))))
    return ga


def _rd_sum_last(a: Tensor) -> Tensor:
    """The sum over the last axis (the diagonal of a matrix masked by the identity)."""
    from tensorcore.ops.reductions import sum as sum_

    return sum_(a, axis=-1)


def svd_grad(ctx: Any, gu: Tensor, gs: Tensor, gvh: Tensor) -> tuple:
    """SVD gradient; with ``full_matrices`` the non-unique extra columns get none."""
    u, s, vh = ctx.outputs
    k = s.shape[-1]
    if u.shape[-1] > k:
        u, gu = getitem(u, (Ellipsis, slice(0, k))), getitem(gu, (Ellipsis, slice(0, k)))
    if vh.shape[-2] > k:
        rows = (Ellipsis, slice(0, k), slice(None))
        vh, gvh = getitem(vh, rows), getitem(gvh, rows)
    return (_svd_thin(u, s, vh, gu, gs, gvh),)


def svdvals_grad(ctx: Any, gs: Tensor) -> tuple:
    """``x_bar = U diag(S_bar) Vh`` with ``U``, ``Vh`` from the thin SVD of ``x``."""
    from tensorcore.ops.linalg_ext import svd

    u, _, vh = svd(ctx.inputs[0], full_matrices=False)
    return (matmul(multiply(u, expand_dims(gs, -2)), vh),)
