"""``tc.linalg`` of complex matrices on every device, against NumPy and ``array_api_strict``.

Values come from NumPy (its LAPACK calls are the ``cpu`` kernels, so U, Vh and eigenvectors
have the same phases); result dtypes and shapes from ``array_api_strict`` (2024.12): real
where the spec says real (eigenvalues, singular values, ``logabsdet``, norms), in the real
dtype of the input's precision. Off ``cpu`` the linalg ops run on ``cpu`` (their only kernels) and
their results come back to the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import placement

from support import assert_matches, check_op

xp = pytest.importorskip("array_api_strict")
la = tc.linalg
COMPLEX = ["complex64", "complex128"]
REAL_OF = {"complex64": "float32", "complex128": "float64"}


def _z(shape: tuple[int, ...], dtype: str, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    """Complex Gaussian matrices; ``shift`` adds ``shift * I`` to square ones (well conditioned)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if shift:
        z = z + shift * np.eye(shape[-1])
    return z.astype(dtype)


def _hpd(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    """Hermitian positive-definite matrices."""
    z = _z(shape, "complex128", seed)
    return (z @ np.conj(np.swapaxes(z, -1, -2)) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def _tol(dtype: str) -> dict[str, float]:
    return {"rtol": 2e-4, "atol": 2e-5} if dtype == "complex64" else {"rtol": 1e-10, "atol": 1e-12}


def _on_device(out: object, device: str) -> None:
    for o in out if isinstance(out, tuple) else (out,):
        assert str(o.device) == str(tc.Device(device)), f"result on {o.device}, expected {device}"


# --- forward values, against NumPy --------------------------------------------------------


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 3), (2, 3, 5)])
@pytest.mark.parametrize("full", [True, False])
def test_svd_and_svdvals(shape: tuple, full: bool, dtype: str, device: str) -> None:
    a = _z(shape, dtype)
    check_op(lambda x: tuple(la.svd(x, full_matrices=full)),
             lambda x: tuple(np.linalg.svd(x, full_matrices=full)), [a], device, **_tol(dtype))
    check_op(la.svdvals, lambda x: np.linalg.svd(x, compute_uv=False), [a], device, **_tol(dtype))
    u, s, vh = la.svd(tc.asarray(a, device=device), full_matrices=False)
    assert s.dtype == np.dtype(REAL_OF[dtype]) and u.dtype == vh.dtype == np.dtype(dtype)
    # U diag(S) Vh rebuilds x, and U has orthonormal columns in the complex inner product
    assert_matches((u * s[..., None, :]) @ vh, a, **_tol(dtype))
    assert_matches(tc.conj(u).mT @ u, np.broadcast_to(np.eye(min(shape[-2:]), dtype=dtype), u.shape[:-2] + (min(shape[-2:]),) * 2),
                   **_tol(dtype))


@pytest.mark.parametrize("dtype", COMPLEX)
def test_eigh_and_eigvalsh_read_the_lower_triangle(dtype: str, device: str) -> None:
    h = _hpd((2, 4, 4), dtype)
    check_op(lambda x: tuple(la.eigh(x)), lambda x: tuple(np.linalg.eigh(x)), [h], device, **_tol(dtype))
    check_op(la.eigvalsh, np.linalg.eigvalsh, [h], device, **_tol(dtype))
    w, v = la.eigh(tc.asarray(h, device=device))
    assert w.dtype == np.dtype(REAL_OF[dtype]) and v.dtype == np.dtype(dtype)
    assert_matches((v * w[..., None, :]) @ tc.conj(v).mT, h, **_tol(dtype))  # V diag(w) V^H rebuilds x
    # Only the lower triangle counts: garbage above the diagonal changes nothing
    messy = h + np.triu(_z((4, 4), dtype, seed=3), 1)
    assert_matches(la.eigvalsh(tc.asarray(messy, device=device)), np.linalg.eigvalsh(h), **_tol(dtype))


@pytest.mark.parametrize("dtype", COMPLEX)
def test_slogdet_has_a_complex_unit_sign_and_a_real_log(dtype: str, device: str) -> None:
    a = _z((3, 4, 4), dtype, shift=1.0)
    check_op(lambda x: tuple(la.slogdet(x)), lambda x: tuple(np.linalg.slogdet(x)), [a], device, **_tol(dtype))
    sign, logabsdet = la.slogdet(tc.asarray(a, device=device))
    _on_device((sign, logabsdet), device)
    assert sign.dtype == np.dtype(dtype) and logabsdet.dtype == np.dtype(REAL_OF[dtype])
    np.testing.assert_allclose(np.abs(sign.numpy()), 1.0, rtol=1e-5)
    assert_matches(sign * tc.exp(logabsdet), np.linalg.det(a), **_tol(dtype))
    singular = a[0].copy()
    singular[2] = 2j * singular[1]
    s0, l0 = la.slogdet(tc.asarray(singular, device=device))
    assert complex(s0) == 0 and float(l0) == -math.inf


@pytest.mark.parametrize("dtype", COMPLEX)
def test_pinv_and_matrix_rank(dtype: str, device: str) -> None:
    a = _z((2, 4, 3), dtype)
    check_op(la.pinv, np.linalg.pinv, [a], device, **_tol(dtype))
    p = la.pinv(tc.asarray(a, device=device)).numpy()
    np.testing.assert_allclose(a @ p @ a, a, **_tol(dtype))  # a Penrose condition: right only with U^H, V
    low = _z((5, 2), dtype, 1) @ _z((2, 4), dtype, 2)  # rank 2
    stack = np.stack([low, _z((5, 4), dtype, 3)])
    rank = la.matrix_rank(tc.asarray(stack, device=device))
    assert rank.dtype == tc.int64
    np.testing.assert_array_equal(rank.numpy(), [2, 4])
    np.testing.assert_array_equal(rank.numpy(), np.linalg.matrix_rank(stack))
    # rtol as a tensor: compared with real singular values
    cut = la.matrix_rank(tc.asarray(stack, device=device), rtol=tc.asarray([1e-3, 0.99], device=device))
    np.testing.assert_array_equal(cut.numpy(), [2, 1])


ORDS = ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf]


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("order", ORDS)
def test_matrix_norm_every_ord_is_real(order: object, dtype: str, device: str) -> None:
    a = _z((2, 3, 4), dtype)
    for keepdims in (False, True):
        out = la.matrix_norm(tc.asarray(a, device=device), ord=order, keepdims=keepdims)
        _on_device(out, device)
        assert out.dtype == np.dtype(REAL_OF[dtype])
        assert_matches(out, np.linalg.norm(a, ord=order, axis=(-2, -1), keepdims=keepdims).astype(REAL_OF[dtype]), **_tol(dtype))


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("order", [2, 1, 0, 3, 0.5, math.inf, -math.inf])
def test_vector_norm_is_real(order: float, dtype: str, device: str) -> None:
    a = _z((3, 4), dtype)
    a[0, 0] = 0
    for axis in (None, 1, (0, 1)):
        out = la.vector_norm(tc.asarray(a, device=device), axis=axis, ord=order)
        assert out.dtype == np.dtype(REAL_OF[dtype])
        # over every element: the norm of the flattened vector (NumPy reads a 2-tuple as a matrix norm)
        expected = np.linalg.norm(a, ord=order, axis=1) if axis == 1 else np.linalg.norm(a.ravel(), ord=order)
        assert_matches(out, np.asarray(expected, dtype=REAL_OF[dtype]), **_tol(dtype))


@pytest.mark.parametrize("dtype", COMPLEX)
def test_products_powers_and_traces(dtype: str, device: str) -> None:
    a, b = _z((2, 3, 3), dtype, 1, shift=2.0), _z((3, 4), dtype, 2)
    u, v = _z((3,), dtype, 3), _z((2, 3), dtype, 4)
    tol = _tol(dtype)
    check_op(lambda x: la.matrix_power(x, 3), lambda x: np.linalg.matrix_power(x, 3), [a], device, **tol)
    check_op(lambda x: la.matrix_power(x, -2), lambda x: np.linalg.matrix_power(x, -2), [a], device, **tol)
    check_op(lambda x: la.matrix_power(x, 0), lambda x: np.linalg.matrix_power(x, 0), [a], device, **tol)
    check_op(lambda x: la.trace(x, offset=1), lambda x: np.trace(x, offset=1, axis1=-2, axis2=-1), [a], device, **tol)
    check_op(la.outer, np.outer, [u, b[0]], device, **tol)  # no conjugation, as NumPy
    check_op(la.cross, np.cross, [v, u], device, **tol)  # numeric dtypes, complex included (no conjugation)
    check_op(lambda x, y: la.tensordot(x, y, axes=1), lambda x, y: np.tensordot(x, y, axes=1), [a, b], device, **tol)
    check_op(la.vecdot, lambda x, y: np.vecdot(x, y), [v, u], device, **tol)  # conjugates x1
    check_op(la.matmul, np.matmul, [a, b], device, **tol)


# --- dtypes and shapes, against array_api_strict ------------------------------------------

def _matrix_norm_case(order: object) -> Callable:
    return lambda m, x: m.matrix_norm(x, ord=order)


REFERENCE_CASES: dict[str, Callable] = {
    "svd": lambda m, x: tuple(m.svd(x)),
    "svd, reduced": lambda m, x: tuple(m.svd(x, full_matrices=False)),
    "svdvals": lambda m, x: m.svdvals(x),
    "eigh": lambda m, x: tuple(m.eigh(x)),
    "eigvalsh": lambda m, x: m.eigvalsh(x),
    "slogdet": lambda m, x: tuple(m.slogdet(x)),
    "det": lambda m, x: m.det(x),
    "inv": lambda m, x: m.inv(x),
    "pinv": lambda m, x: m.pinv(x),
    "matrix_rank": lambda m, x: m.matrix_rank(x),
    "matrix_power": lambda m, x: m.matrix_power(x, 2),
    "trace": lambda m, x: m.trace(x),
    "diagonal": lambda m, x: m.diagonal(x),
    "qr": lambda m, x: tuple(m.qr(x)),
    "cholesky": lambda m, x: m.cholesky(x),
    "vector_norm": lambda m, x: m.vector_norm(x, axis=-1),
    **{f"matrix_norm {o}": _matrix_norm_case(o) for o in ORDS},
}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("case", sorted(REFERENCE_CASES))
def test_dtypes_and_shapes_match_array_api_strict(case: str, dtype: str, device: str) -> None:
    xp.set_array_api_strict_flags(api_version="2024.12")
    a = _hpd((2, 3, 3), dtype)
    fn = REFERENCE_CASES[case]
    ours = fn(la, tc.asarray(a, device=device))
    theirs = fn(xp.linalg, xp.asarray(a))
    ours, theirs = (o if isinstance(o, tuple) else (o,) for o in (ours, theirs))
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        assert o.dtype.name == str(t.dtype).rsplit(".", 1)[-1], (case, o.dtype, t.dtype)
        assert tuple(o.shape) == tuple(t.shape), (case, o.shape, t.shape)
        assert str(o.device) == str(tc.Device(device))
        np.testing.assert_allclose(o.numpy(), np.asarray(t), **_tol(dtype))


# --- devices without complex kernels ------------------------------------------------------


def test_off_cpu_the_ops_fall_back_to_cpu_and_results_come_back(device: str) -> None:
    if tc.Device(device).type == "cpu":
        pytest.skip("cpu computes complex numbers natively")
    z = tc.asarray(_z((3, 3), "complex64"), device=device)
    s = la.svdvals(z)
    w = la.eigvalsh(z)
    assert s.device == tc.Device(device) and w.device == tc.Device(device)
    assert s.dtype == w.dtype == tc.float32
    assert placement.fallbacks["linalg.svdvals", tc.Device(device)] == 1
    assert placement.fallbacks["linalg.eigvalsh", tc.Device(device)] == 1
    # the linalg ops have no kernel but cpu's, real or complex: strict placement names the op
    with placement.placement_policy("strict"), pytest.raises(tc.PlacementError, match="'linalg.svd' has no kernel on"):
        la.svd(z)


def test_real_inputs_are_unchanged(device: str) -> None:
    a = _hpd((3, 3), "complex128").real.astype(np.float32)
    assert la.svdvals(tc.asarray(a, device=device)).dtype == tc.float32
    sign, logabsdet = la.slogdet(tc.asarray(a, device=device))
    assert sign.dtype == logabsdet.dtype == tc.float32
    w, v = la.eigh(tc.asarray(a, device=device))
    assert w.dtype == v.dtype == tc.float32
