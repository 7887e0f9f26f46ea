"""Gradients of ``tc.linalg`` for complex matrices, against central finite differences in
complex128 on every device.

The convention is PyTorch's and JAX's for a real loss ``L`` (``docs/array-api.md``): the
gradient of ``z = x + iy`` is ``dL/dx + i dL/dy``. ``check_complex_grad`` (from
``tests/test_complex_grad.py``) perturbs the real and the imaginary part of each element
apart. Eigenvectors and singular vectors have a free phase each, so they enter only through
functions that do not depend on it (``|U|**2``, ``U @ Vh``, ``V diag(w) V^H``); inputs that
only make sense as Hermitian matrices (eigh, cholesky) are built from any matrix first.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_complex_grad import check_complex_grad

import tensorcore as tc
from tensorcore.ops.registry import OPS

la = tc.linalg


def _z(shape: tuple[int, ...], seed: int, shift: float = 0.0) -> np.ndarray:
    """complex128 Gaussian matrices; ``shift * I`` added to square ones keeps them well conditioned."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return z + shift * np.eye(shape[-1]) if shift else z


def _h(x: tc.Tensor) -> tc.Tensor:
    """The conjugate transpose of the last two axes."""
    return tc.conj(x).mT


def _herm(x: tc.Tensor) -> tc.Tensor:
    return (x + _h(x)) * 0.5


def _hpd(x: tc.Tensor) -> tc.Tensor:
    """A Hermitian positive-definite function of any square x."""
    n = x.shape[-1]
    return x @ _h(x) + tc.asarray(n * np.eye(n), device=x.device)


A = _z((2, 3, 3), 0, shift=3.0)


def test_inv_det_slogdet(device: str) -> None:
    check_complex_grad(la.inv, [A], device)
    check_complex_grad(la.det, [A], device)
    check_complex_grad(lambda x: la.slogdet(x).logabsdet, [A], device)
    check_complex_grad(lambda x: la.slogdet(x).sign, [A], device)  # the complex sign turns with x
    check_complex_grad(lambda x: (lambda s, d: s * tc.astype(d, tc.complex128) * 0.3j)(*la.slogdet(x)), [A], device)


@pytest.mark.parametrize("b_shape", [(3,), (2, 3, 2), (4, 1, 3, 2)])
def test_solve_both_inputs(b_shape: tuple, device: str) -> None:
    check_complex_grad(la.solve, [A, _z(b_shape, 1)], device)  # broadcast batches are summed


def test_solve_with_a_real_matrix_and_a_complex_right_hand_side(device: str) -> None:
    check_complex_grad(la.solve, [A.real, _z((2, 3, 2), 2)], device)  # the real x1 gets the real part


def test_cholesky(device: str) -> None:
    x = _z((2, 3, 3), 3)
    check_complex_grad(lambda v: la.cholesky(_hpd(v)), [x], device)
    check_complex_grad(lambda v: la.cholesky(_hpd(v), upper=True), [x], device)


def test_eigh_and_eigvalsh(device: str) -> None:
    x = _z((2, 3, 3), 4)
    check_complex_grad(lambda v: la.eigvalsh(_herm(v)), [x], device)
    check_complex_grad(lambda v: la.eigh(_herm(v)).eigenvalues, [x], device)
    check_complex_grad(lambda v: tc.abs(la.eigh(_herm(v)).eigenvectors) ** 2, [x], device)  # phase-free
    # V diag(w**2) V^H: the eigenvectors and eigenvalues together
    check_complex_grad(lambda v: (lambda w, q: (q * (w * w)[..., None, :]) @ _h(q))(*la.eigh(_herm(v))), [x], device)


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 3), (3, 4)])
def test_qr(shape: tuple, device: str) -> None:
    x = _z(shape, 5)
    check_complex_grad(lambda v: la.qr(v).Q, [x], device)
    check_complex_grad(lambda v: la.qr(v).R, [x], device)
    check_complex_grad(lambda v: (lambda q, r: (q @ r) * tc.sum(tc.abs(r)))(*la.qr(v)), [x], device)  # Q and R together
    if shape[-2] <= shape[-1]:
        check_complex_grad(lambda v: la.qr(v, mode="complete").Q, [x], device)


@pytest.mark.parametrize("shape", [(2, 3, 3), (2, 4, 3), (3, 4)])
def test_svd_and_svdvals(shape: tuple, device: str) -> None:
    x = _z(shape, 6)
    full = shape[-1] == shape[-2]
    check_complex_grad(la.svdvals, [x], device)
    check_complex_grad(lambda v: la.svd(v, full_matrices=full).S, [x], device)
    # U diag(S**2) Vh and U @ Vh do not depend on the common phase of each pair of singular vectors
    check_complex_grad(lambda v: (lambda u, s, vh: (u * (s * s)[..., None, :]) @ vh)(*la.svd(v, full_matrices=False)), [x], device)
    check_complex_grad(lambda v: (lambda u, s, vh: u @ vh)(*la.svd(v, full_matrices=False)), [x], device)
    check_complex_grad(lambda v: (lambda u, s, vh: tc.abs(u) ** 2)(*la.svd(v, full_matrices=False)), [x], device)
    check_complex_grad(lambda v: (lambda u, s, vh: tc.abs(vh) ** 3)(*la.svd(v, full_matrices=False)), [x], device)


def test_pinv_matrix_power_trace_outer(device: str) -> None:
    check_complex_grad(la.pinv, [_z((2, 4, 3), 7)], device)
    check_complex_grad(lambda v: la.matrix_power(v, 3), [A], device)
    check_complex_grad(lambda v: la.matrix_power(v, -2), [A], device)
    check_complex_grad(lambda v: la.trace(v, offset=1), [_z((2, 3, 4), 8)], device)
    check_complex_grad(la.outer, [_z((3,), 9), _z((4,), 10)], device)
    check_complex_grad(la.cross, [_z((2, 3), 11), _z((3,), 12)], device)


@pytest.mark.parametrize("order", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_matrix_norm(order: object, device: str) -> None:
    check_complex_grad(lambda v: la.matrix_norm(v, ord=order), [_z((2, 3, 4), 13)], device)


@pytest.mark.parametrize("order", [2, 1, 3, 0.5, math.inf, -math.inf])
def test_vector_norm(order: float, device: str) -> None:
    x = _z((2, 3), 14)
    check_complex_grad(lambda v: la.vector_norm(v, ord=order), [x], device)
    check_complex_grad(lambda v: la.vector_norm(v, axis=-1, ord=order, keepdims=True), [x], device)


def test_two_norms_at_zero_have_zero_gradients_not_nan(device: str) -> None:
    z = tc.zeros((2, 3), dtype=tc.complex128, device=device)
    for fn in (la.vector_norm, la.matrix_norm):
        with tc.GradientTape() as tape:
            tape.watch(z)
            y = fn(z)
        g = tape.gradient(y, z)
        assert g.dtype == tc.complex128
        np.testing.assert_array_equal(g.numpy(), np.zeros((2, 3)))


def test_second_order_through_det(device: str) -> None:
    """The gradient of det (which uses inv, conj and matmul) differentiated again."""

    def grad_of_det(x: tc.Tensor) -> tc.Tensor:
        with tc.GradientTape() as tape:
            tape.watch(x)
            y = tc.sum(tc.real(la.det(x)))
        return tape.gradient(y, x)

    check_complex_grad(grad_of_det, [A], device)


def test_the_gradient_that_does_not_exist_is_refused_by_name(device: str) -> None:
    z = tc.asarray(_z((4, 3), 15), device=device)
    with tc.GradientTape() as tape:
        tape.watch(z)
        loss = tc.sum(tc.abs(la.qr(z, mode="complete").Q))
    with pytest.raises(tc.GradientError, match=r"linalg.qr: no gradient for mode='complete' with M > N"):
        tape.gradient(loss, z)


def test_every_linalg_op_claims_a_complex_gradient() -> None:
    linalg_ops = {name for name in OPS if name.startswith("linalg.")}
    assert linalg_ops >= {"linalg.inv", "linalg.solve", "linalg.det", "linalg.slogdet", "linalg.cholesky",
                          "linalg.qr", "linalg.eigh", "linalg.eigvalsh", "linalg.svd", "linalg.svdvals"}
    assert all(OPS[name].complex_grad for name in linalg_ops), sorted(n for n in linalg_ops if not OPS[n].complex_grad)
