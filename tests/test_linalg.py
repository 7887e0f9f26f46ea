"""``tc.linalg`` on every device against NumPy, with float64 finite-difference gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op, to_numpy

la = tc.linalg
rng = np.random.default_rng(0)


def _matrices(shape: tuple[int, ...]) -> np.ndarray:
    """Well-conditioned square matrices (diagonally shifted), or any shape for non-square."""
    a = rng.standard_normal(shape)
    if shape[-1] == shape[-2]:
        a = a + 3.0 * np.eye(shape[-1])
    return a


def _spd(shape: tuple[int, ...]) -> np.ndarray:
    a = rng.standard_normal(shape)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])


def _spd_of(x: tc.Tensor) -> tc.Tensor:
    """A symmetric positive-definite function of any square x (for gradient checks)."""
    n = x.shape[-1]
    return x @ x.mT + tc.asarray(n * np.eye(n), device=x.device)


def _sym(x: tc.Tensor) -> tc.Tensor:
    return (x + x.mT) * 0.5


# --- forward, against NumPy, float32 and float64, single matrices and stacks ------------

SQUARE = [(3, 3), (2, 4, 4)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SQUARE)
def test_inv_det_slogdet_solve_forward(shape: tuple, dtype: type, device: str) -> None:
    a = _matrices(shape).astype(dtype)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    check_op(la.inv, np.linalg.inv, [a], device, **tol)
    check_op(la.det, lambda x: np.asarray(np.linalg.det(x)), [a], device, **tol)
    check_op(lambda x: tuple(la.slogdet(x)), lambda x: tuple(np.asarray(v, dtype=dtype) for v in np.linalg.slogdet(x)), [a], device, **tol)
    b_mat = rng.standard_normal(shape[:-1] + (2,)).astype(dtype)
    check_op(la.solve, np.linalg.solve, [a, b_mat], device, **tol)
    b_vec = rng.standard_normal(shape[-1]).astype(dtype)
    check_op(la.solve, lambda x, b: np.linalg.solve(x, b[:, None])[..., 0], [a, b_vec], device, **tol)


def test_solve_broadcasts_batch_dimensions(device: str) -> None:
    a = _matrices((2, 1, 3, 3))
    b = rng.standard_normal((4, 3, 2))
    out = la.solve(tc.asarray(a, device=device), tc.asarray(b, device=device))
    assert out.shape == (2, 4, 3, 2)
    assert_matches(out, np.linalg.solve(np.broadcast_to(a, (2, 4, 3, 3)), np.broadcast_to(b, (2, 4, 3, 2))), 1e-10, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decompositions_forward(dtype: type, device: str) -> None:
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-12}
    spd = _spd((2, 3, 3)).astype(dtype)
    check_op(la.cholesky, np.linalg.cholesky, [spd], device, **tol)
    check_op(lambda x: la.cholesky(x, upper=True), lambda x: np.swapaxes(np.linalg.cholesky(x), -1, -2), [spd], device, **tol)
    check_op(la.eigvalsh, np.linalg.eigvalsh, [spd], device, **tol)
    w, v = la.eigh(tc.asarray(spd, device=device))
    assert_matches(w, np.linalg.eigvalsh(spd), **tol)
    assert_matches(v @ (v * w[..., None, :]).mT, spd, **tol)  # V diag(w) V^T rebuilds x
    for shape in [(2, 4, 3), (3, 4)]:
        a = rng.standard_normal(shape).astype(dtype)
        for mode in ("reduced", "complete"):
            q, r = la.qr(tc.asarray(a, device=device), mode=mode)
            q_np, r_np = np.linalg.qr(a, mode=mode)
            assert_matches((q, r), (q_np, r_np), **tol)
        check_op(la.svdvals, lambda x: np.linalg.svd(x, compute_uv=False), [a], device, **tol)
        for full in (True, False):
            u, s, vh = la.svd(tc.asarray(a, device=device), full_matrices=full)
            u_np, s_np, vh_np = np.linalg.svd(a, full_matrices=full)
            assert (u.shape, s.shape, vh.shape) == (u_np.shape, s_np.shape, vh_np.shape)
            assert u.dtype == s.dtype == vh.dtype == dtype
            k = s.shape[-1]
            rebuilt = (u[..., :, :k] * s[..., None, :]) @ vh[..., :k, :]
            assert_matches(rebuilt, a, **tol)
            assert_matches(s, s_np, **tol)


def test_results_are_named_tuples(device: str) -> None:
    x = tc.asarray(_spd((3, 3)), device=device)
    assert la.eigh(x)._fields == ("eigenvalues", "eigenvectors")
    assert la.qr(x)._fields == ("Q", "R")
    assert la.slogdet(x)._fields == ("sign", "logabsdet")
    assert la.svd(x)._fields == ("U", "S", "Vh")
    assert_matches(la.slogdet(x).logabsdet, np.linalg.slogdet(to_numpy(x)).logabsdet, 1e-10)


def test_float16_goes_through_float32(device: str) -> None:
    a = _matrices((3, 3)).astype(np.float16)
    out = la.inv(tc.asarray(a, device=device))
    assert out.dtype == tc.float16
    np.testing.assert_allclose(to_numpy(out), np.linalg.inv(a.astype(np.float32)), rtol=1e-2, atol=1e-3)


def test_composite_functions_forward(device: str) -> None:
    a = _matrices((2, 3, 4))
    sq = _matrices((2, 3, 3))
    check_op(la.diagonal, lambda x: np.diagonal(x, axis1=-2, axis2=-1), [a], device)
    for offset in (-2, -1, 1, 3, 5):
        check_op(lambda x, o=offset: la.diagonal(x, offset=o), lambda x, o=offset: np.diagonal(x, o, -2, -1).copy(), [a], device)
        check_op(lambda x, o=offset: la.trace(x, offset=o), lambda x, o=offset: np.trace(x, o, axis1=-2, axis2=-1), [a], device)
    ints = rng.integers(-5, 5, (3, 3)).astype(np.int32)
    check_op(la.trace, lambda x: np.trace(x).astype(np.int64), [ints], device)
    check_op(lambda x: la.trace(x, dtype=tc.float64), lambda x: np.trace(x).astype(np.float64), [ints], device)
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    check_op(la.outer, np.outer, [u, v], device)
    check_op(la.cross, np.cross, [rng.standard_normal((2, 3)), rng.standard_normal((3,))], device)
    check_op(lambda x, y: la.cross(x, y, axis=-2), lambda x, y: np.cross(x, y, axis=-2),
             [rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 1))], device)
    check_op(la.pinv, np.linalg.pinv, [a], device, rtol=1e-10, atol=1e-12)
    rank_deficient = np.stack([np.outer(u, u), sq[0]])
    check_op(la.matrix_rank, np.linalg.matrix_rank, [rank_deficient], device)
    check_op(la.pinv, np.linalg.pinv, [rank_deficient], device, rtol=1e-8, atol=1e-10)
    for n in (0, 1, 2, 3, 5, -1, -2):
        check_op(lambda x, n=n: la.matrix_power(x, n), lambda x, n=n: np.linalg.matrix_power(x, n), [sq], device, rtol=1e-10, atol=1e-10)
    x = tc.asarray(sq, device=device)
    assert_matches(la.matmul(x, x), sq @ sq)
    assert_matches(la.matrix_transpose(x), np.swapaxes(sq, -1, -2))
    assert_matches(la.tensordot(x, x, axes=([1, 2], [1, 2])), np.tensordot(sq, sq, axes=([1, 2], [1, 2])))
    assert_matches(la.vecdot(x, x), np.sum(sq * sq, axis=-1))


@pytest.mark.parametrize("order", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norm_forward(order: object, keepdims: bool, device: str) -> None:
    a = rng.standard_normal((2, 3, 4))
    check_op(lambda x: la.matrix_norm(x, ord=order, keepdims=keepdims),
             lambda x: np.linalg.matrix_norm(x, ord=order, keepdims=keepdims), [a], device, rtol=1e-10)


@pytest.mark.parametrize("order", [2, 1, 0, 3, 0.5, -1, math.inf, -math.inf])
@pytest.mark.parametrize("axis", [None, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norm_forward(order: float, axis: object, keepdims: bool, device: str) -> None:
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    if order >= 0:
        a[0, 0, 0] = 0.0  # a zero element (negative orders would divide by it)
    check_op(lambda x: la.vector_norm(x, axis=axis, ord=order, keepdims=keepdims),
             lambda x: np.linalg.vector_norm(x, axis=axis, ord=order, keepdims=keepdims), [a], device, rtol=1e-5)


# --- gradients: float64, central finite differences ---------------------------------------


def test_inv_det_slogdet_gradients(device: str) -> None:
    a = _matrices((2, 3, 3))
    check_grad(la.inv, [a], device)
    check_grad(la.det, [a], device)
    check_grad(lambda x: la.slogdet(x).logabsdet, [a], device)
    check_grad(lambda x: tuple(la.slogdet(-x)), [a], device)  # sign is piecewise constant: zero gradient


@pytest.mark.parametrize("b_shape", [(2, 3, 2), (3,), (3, 1), (2, 2, 3, 1)])
def test_solve_gradient_both_inputs(b_shape: tuple, device: str) -> None:
    a = _matrices((2, 3, 3))
    b = rng.standard_normal(b_shape)
    check_grad(la.solve, [a, b], device)


def test_cholesky_gradient(device: str) -> None:
    a = rng.standard_normal((2, 3, 3))
    check_grad(lambda x: la.cholesky(_spd_of(x)), [a], device)
    check_grad(lambda x: la.cholesky(_spd_of(x), upper=True), [a], device)


def test_eigh_gradient(device: str) -> None:
    a = rng.standard_normal((2, 3, 3))
    # eigenvectors enter through v * v, which does not depend on their signs
    check_grad(lambda x: (lambda w, v: (w, v * v))(*la.eigh(_sym(x))), [a], device)
    check_grad(lambda x: la.eigvalsh(_sym(x)), [a], device)
    check_grad(lambda x: la.eigh(_sym(x)).eigenvalues, [a], device)


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 3), (3, 4)])
def test_qr_gradient(shape: tuple, device: str) -> None:
    a = rng.standard_normal(shape)
    check_grad(lambda x: tuple(la.qr(x)), [a], device)
    if shape[-2] <= shape[-1]:
        check_grad(lambda x: tuple(la.qr(x, mode="complete")), [a], device)


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 3), (3, 4)])
def test_svd_gradient(shape: tuple, device: str) -> None:
    a = rng.standard_normal(shape)
    full = shape[-1] == shape[-2]
    check_grad(la.svdvals, [a], device)
    check_grad(lambda x: la.svd(x, full_matrices=full).S, [a], device)
    check_grad(lambda x: (lambda u, s, vh: (u * s[..., None, :]) @ vh)(*la.svd(x, full_matrices=False)), [a], device)
    check_grad(lambda x: (lambda u, s, vh: (u * u, vh * vh))(*la.svd(x, full_matrices=False)), [a], device)
    if not full:  # only the first min(M, N) columns of U / rows of Vh are used: well defined
        k = min(shape[-2:])
        check_grad(lambda x: (lambda u, s, vh: (u[..., :k] * u[..., :k], vh[..., :k, :] ** 2))(*la.svd(x)), [a], device)


def test_pinv_gradient(device: str) -> None:
    check_grad(la.pinv, [rng.standard_normal((2, 4, 3))], device)


@pytest.mark.parametrize("order", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_matrix_norm_gradient(order: object, device: str) -> None:
    check_grad(lambda x: la.matrix_norm(x, ord=order), [rng.standard_normal((2, 3, 4))], device)


@pytest.mark.parametrize("order", [2, 1, 3, -1, math.inf, -math.inf])
def test_vector_norm_gradient(order: float, device: str) -> None:
    a = rng.standard_normal((2, 3))
    check_grad(lambda x: la.vector_norm(x, ord=order), [a], device)
    check_grad(lambda x: la.vector_norm(x, axis=-1, ord=order, keepdims=True), [a], device)


def test_norm_gradient_at_zero_is_zero_not_nan(device: str) -> None:
    x = tc.zeros((2, 3), dtype=tc.float64, device=device)
    for fn in (la.vector_norm, lambda v: la.vector_norm(v, ord=3), lambda v: la.matrix_norm(v)):
        with tc.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        assert_matches(tape.gradient(y, x), np.zeros((2, 3)))


def test_trace_diagonal_outer_cross_matrix_power_gradients(device: str) -> None:
    a = rng.standard_normal((2, 3, 4))
    check_grad(la.trace, [a], device)
    check_grad(lambda x: la.trace(x, offset=1), [a], device)
    check_grad(lambda x: la.diagonal(x, offset=-1), [a], device)
    check_grad(la.outer, [rng.standard_normal(3), rng.standard_normal(4)], device)
    check_grad(la.cross, [rng.standard_normal((2, 3)), rng.standard_normal((3,))], device)
    check_grad(lambda x: la.matrix_power(x, 3), [rng.standard_normal((2, 3, 3))], device)
    check_grad(lambda x: la.matrix_power(x, -2), [_matrices((2, 3, 3))], device)


def test_gradients_are_differentiable(device: str) -> None:
    """Second order: the gradient of det (which uses inv) and of inv, differentiated again."""

    def grad_of(fn):  # noqa: ANN001, ANN202
        def inner(x: tc.Tensor) -> tc.Tensor:
            with tc.GradientTape() as tape:
                tape.watch(x)
                y = tc.sum(fn(x))
            return tape.gradient(y, x)

        return inner

    a = _matrices((2, 3, 3))
    check_grad(grad_of(la.det), [a], device)
    check_grad(grad_of(lambda x: la.inv(x) * la.inv(x)), [a], device)
    check_grad(grad_of(lambda x: la.cholesky(_spd_of(x))), [rng.standard_normal((3, 3))], device)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh", "matrix_power"])
def test_non_square_input_names_function_and_shape(name: str, device: str) -> None:
    x = tc.zeros((2, 3), dtype=tc.float64, device=device)
    args = (x, 2) if name == "matrix_power" else (x,)
    with pytest.raises(tc.OpError, match=rf"linalg\.{name}: x has shape \(2, 3\).*square matrix"):
        getattr(la, name)(*args)


@pytest.mark.parametrize("name", ["inv", "det", "slogdet", "cholesky", "eigh", "eigvalsh", "qr", "svd", "svdvals",
                                  "pinv", "matrix_rank", "matrix_norm", "vector_norm"])
def test_integer_input_names_function_and_dtype(name: str, device: str) -> None:
    x = tc.asarray(np.eye(3, dtype=np.int64), device=device)
    with pytest.raises(tc.OpError, match=rf"linalg\.{name}: x has dtype int64 \(shape \(3, 3\)\).*floating-point"):
        getattr(la, name)(x)


def test_solve_mismatched_shapes(device: str) -> None:
    a = tc.zeros((3, 3), dtype=tc.float64, device=device)
    with pytest.raises(tc.OpError, match=r"linalg\.solve: x1 has shape \(3, 3\) and x2 has shape \(4,\); expected x2 of shape \(3,\)"):
        la.solve(a, tc.zeros((4,), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.solve: x1 has shape \(3, 3\) and x2 has shape \(2, 2\).*\(\.\.\., 3, K\)"):
        la.solve(a, tc.zeros((2, 2), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.solve: the batch dimensions of x1 \(2, 3, 3\) and x2 \(4, 3, 1\)"):
        la.solve(tc.zeros((2, 3, 3), dtype=tc.float64, device=device), tc.zeros((4, 3, 1), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.solve: x1 has shape \(2, 3\).*square"):
        la.solve(tc.zeros((2, 3), dtype=tc.float64, device=device), tc.zeros((2,), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.solve: x2 has dtype int64"):
        la.solve(a, tc.asarray(np.ones(3, dtype=np.int64), device=device))


def test_singular_and_indefinite_matrices_raise_clear_errors(device: str) -> None:
    singular = np.stack([np.eye(2), np.array([[1.0, 2.0], [2.0, 4.0]])])
    x = tc.asarray(singular, device=device)
    with pytest.raises(tc.OpError, match=r"linalg\.inv: matrix \[1\] of the stack \(input shape \(2, 2, 2\)\) is singular"):
        la.inv(x)
    with pytest.raises(tc.OpError, match=r"linalg\.solve: matrix \[1\] of the stack in x1 .* is singular"):
        la.solve(x, tc.ones((2,), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.inv: the matrix \(input shape \(2, 2\)\) is singular"):
        la.inv(tc.zeros((2, 2), dtype=tc.float64, device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.cholesky: the matrix .* is not positive definite"):
        la.cholesky(tc.asarray(-np.eye(2), device=device))
    assert_matches(la.det(x), np.linalg.det(singular))  # a singular matrix has a determinant: 0
    assert_matches(la.slogdet(x).sign, np.array([1.0, 0.0]))


def test_argument_errors(device: str) -> None:
    x = tc.asarray(_matrices((3, 3)), device=device)
    v = tc.asarray(rng.standard_normal(3), device=device)
    with pytest.raises(tc.OpError, match=r"linalg\.matrix_norm: unknown ord 3"):
        la.matrix_norm(x, ord=3)
    with pytest.raises(tc.OpError, match=r"linalg\.matrix_norm: x has shape \(3,\).*matrix"):
        la.matrix_norm(v)
    with pytest.raises(tc.OpError, match=r"linalg\.qr: mode must be 'reduced' or 'complete', got 'r'"):
        la.qr(x, mode="r")
    with pytest.raises(tc.OpError, match=r"linalg\.outer: x1 has shape \(3, 3\).*two 1-D"):
        la.outer(x, v)
    with pytest.raises(tc.OpError, match=r"linalg\.cross: axis -1 has size 2 .* expected size 3"):
        la.cross(tc.zeros((2,), device=device), tc.zeros((2,), device=device))
    with pytest.raises(tc.OpError, match=r"linalg\.cross: axis 0 is invalid.*negative int"):
        la.cross(v, v, axis=0)
    with pytest.raises(tc.OpError, match=r"linalg\.matrix_power: n must be an int"):
        la.matrix_power(x, 1.5)
    with pytest.raises(tc.GradientError, match=r"linalg\.qr: no gradient for mode='complete' with M > N"):
        a = tc.asarray(rng.standard_normal((3, 2)), device=device)
        with tc.GradientTape() as tape:
            tape.watch(a)
            y = tc.sum(la.qr(a, mode="complete").Q)
        tape.gradient(y, a)
