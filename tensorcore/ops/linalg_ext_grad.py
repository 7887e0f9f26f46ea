"""Reverse-mode gradients of the ``tc.linalg`` decompositions and solvers.

Each gradient is the standard matrix-calculus result, written with tensorcore ops so it runs
on any device and can itself be differentiated. Notation: ``g`` is the gradient of an output,
``T`` the transpose of the last two axes, ``sym(A) = (A + T(A)) / 2``. Inputs that only make
sense as symmetric matrices (cholesky, eigh) get a symmetric gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tensorcore.errors import GradientError
from tensorcore.ops.arithmetic import add, divide, multiply, negative, subtract, sum_to_shape
from tensorcore.ops.indexing import getitem
from tensorcore.ops.linalg import matmul
from tensorcore.ops.logic import astype, equal, where
from tensorcore.ops.manipulation import concat, expand_dims, matrix_transpose, reshape
from tensorcore.tensor import Tensor

T = matrix_transpose


def _const(array: np.ndarray, like: Tensor) -> Tensor:
    """A constant with ``like``'s dtype, on ``like``'s device."""
    from tensorcore.ops.creation import asarray

    return asarray(array.astype(like.dtype), device=like.device)


def _sym(a: Tensor) -> Tensor:
    return multiply(add(a, T(a)), 0.5)


def _cast(g: Tensor, x: Tensor) -> Tensor:
    """``g`` in ``x``'s dtype (mixed-precision inputs promote the result)."""
    return g if g.dtype == x.dtype else astype(g, x.dtype)


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
    """``x = L T(L)``: ``x_bar = sym(T(L)^-1 Phi(T(L) L_bar) L^-1)``, Phi = lower triangle, half diagonal."""
    from tensorcore.ops.linalg_ext import solve

    upper = ctx.attrs["upper"]
    factor = T(ctx.output) if upper else ctx.output
    g = T(g) if upper else g
    n = factor.shape[-1]
    phi = multiply(matmul(T(factor), g), _const(np.tril(np.ones((n, n))) - 0.5 * np.eye(n), factor))
    lt = T(factor)
    right = T(solve(lt, T(phi)))  # phi @ L^-1
    return (_sym(solve(lt, right)),)


def inv_grad(ctx: Any, g: Tensor) -> tuple:
    """``y = x^-1``: ``x_bar = -T(y) g T(y)``."""
    yt = T(ctx.output)
    return (negative(matmul(matmul(yt, g), yt)),)


def solve_grad(ctx: Any, g: Tensor) -> tuple:
    """``X = A^-1 B``: ``B_bar = T(A)^-1 g`` and ``A_bar = -B_bar T(X)`` (summed over broadcasting)."""
    from tensorcore.ops.linalg_ext import solve

    a, b = ctx.inputs
    x = ctx.output
    if b.ndim == 1:  # one right-hand side vector: work with it as an (M, 1) matrix
        gb = solve(T(a), expand_dims(g, -1))
        ga = negative(matmul(gb, expand_dims(x, -2)))
        gb = reshape(gb, gb.shape[:-1])
    else:
        gb = solve(T(a), g)
        ga = negative(matmul(gb, T(x)))
    ga = _cast(sum_to_shape(ga, a.shape), a) if ctx.needs_grad[0] else None
    gb = _cast(sum_to_shape(gb, b.shape), b) if ctx.needs_grad[1] else None
    return ga, gb


def det_grad(ctx: Any, g: Tensor) -> tuple:
    """``d = det(x)``: ``x_bar = g d T(x^-1)`` (needs a non-singular x)."""
    from tensorcore.ops.linalg_ext import inv

    x = ctx.inputs[0]
    return (multiply(_scalar_to_matrix(multiply(g, ctx.output)), T(inv(x))),)


def slogdet_grad(ctx: Any, g_sign: Tensor, g_logabsdet: Tensor) -> tuple:
    """The sign is piecewise constant; ``log|det x|`` has gradient ``T(x^-1)``."""
    from tensorcore.ops.linalg_ext import inv

    x = ctx.inputs[0]
    return (multiply(_scalar_to_matrix(g_logabsdet), T(inv(x))),)


def eigh_grad(ctx: Any, gw: Tensor, gv: Tensor) -> tuple:
    """``x = V diag(w) T(V)``: ``x_bar = sym(V (diag(w_bar) + F o (T(V) V_bar)) T(V))``.

    ``F[i, j] = 1 / (w[j] - w[i])``; eigenvector gradients need distinct eigenvalues.
    """
    w, v = ctx.outputs
    inner = add(_diag(gw), multiply(_inverse_gaps(w), matmul(T(v), gv)))
    return (_sym(matmul(matmul(v, inner), T(v))),)


def eigvalsh_grad(ctx: Any, gw: Tensor) -> tuple:
    """``x_bar = V diag(w_bar) T(V)``, with ``V`` from ``eigh(x)``."""
    from tensorcore.ops.linalg_ext import eigh

    v = eigh(ctx.inputs[0]).eigenvectors
    return (matmul(multiply(v, expand_dims(gw, -2)), T(v)),)


def _qr_tall(q: Tensor, r: Tensor, gq: Tensor, gr: Tensor) -> Tensor:
    """Reduced QR with M >= N: ``x_bar = (Q_bar + Q K) T(R)^-1``.

    ``K`` is the symmetric matrix whose upper triangle is that of ``R_bar T(R) - T(Q) Q_bar``.
    """
    from tensorcore.ops.linalg_ext import solve

    k = r.shape[-1]
    n_mat = subtract(matmul(gr, T(r)), matmul(T(q), gq))
    upper = multiply(n_mat, _const(np.triu(np.ones((k, k))), r))
    strict = multiply(n_mat, _const(np.triu(np.ones((k, k)), 1), r))
    z = add(gq, matmul(q, add(upper, T(strict))))
    return T(solve(r, T(z)))  # z @ T(R)^-1


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
    gx = _qr_tall(q, getitem(r, left), add(gq, matmul(y, T(gr_y))), getitem(gr, left))
    return (concat([gx, matmul(q, gr_y)], axis=-1),)


def _svd_thin(u: Tensor, s: Tensor, vh: Tensor, gu: Tensor, gs: Tensor, gvh: Tensor) -> Tensor:
    """Thin SVD ``x = U diag(S) Vh`` (U: M x K, Vh: K x N, K = min(M, N)).

    ``x_bar = U [ (F o (J - T(J))) S + S (F o (L - T(L))) + diag(S_bar) ] Vh
    + (I - U T(U)) U_bar S^-1 Vh + U S^-1 T(V_bar) (I - V Vh)`` with ``J = T(U) U_bar``,
    ``L = Vh V_bar`` and ``F[i, j] = 1 / (S[j]^2 - S[i]^2)``.
    """
    m, n, k = u.shape[-2], vh.shape[-1], s.shape[-1]
    f = _inverse_gaps(multiply(s, s))
    j = matmul(T(u), gu)
    ell = matmul(vh, T(gvh))
    inner = add(
        add(multiply(multiply(f, subtract(j, T(j))), expand_dims(s, -2)),
            multiply(expand_dims(s, -1), multiply(f, subtract(ell, T(ell))))),
        _diag(gs),
    )
    ga = matmul(matmul(u, inner), vh)
    s_inv = _safe_reciprocal(s)
    if m > k:
        ga = add(ga, matmul(multiply(subtract(gu, matmul(u, j)), expand_dims(s_inv, -2)), vh))
    if n > k:
        ga = add(ga, matmul(u, multiply(expand_dims(s_inv, -1), subtract(gvh, matmul(T(ell), vh)))))
    return ga


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
