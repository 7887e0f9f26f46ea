"""Native complex kernels on OpenCL (``backends/opencl_ops/complex.py``, ``kernels/opencl/complex.cl``):
each op against NumPy in complex64 and complex128 (broadcasting, Python scalars, strided
views, empty arrays, the special values), that these ops run on the device with no fallback,
and that every other complex op still falls back to cpu, counted.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import dispatch_checks, placement, registry

if "opencl:0" not in [str(d.device) for d in tc.devices()]:
    pytest.skip("no OpenCL device here (install an OpenCL driver, e.g. Debian's pocl-opencl-icd)", allow_module_level=True)

from tensorcore.backends.opencl import CLArray  # noqa: E402  (needs pyopencl: after the skip)
from tensorcore.backends.opencl_ops import complex as complex_ops  # noqa: E402

DEV = "opencl:0"
RTOL = {"complex64": 2e-6, "complex128": 1e-13}
INF, NAN = math.inf, math.nan


@pytest.fixture(params=["complex64", "complex128"])
def dtype(request: pytest.FixtureRequest) -> str:
    """Each complex dtype; complex128 only where the device runs float64."""
    if request.param == "complex128" and not registry.get_backend("opencl").device(0).fp64:
        pytest.skip("opencl:0 has no float64")
    return request.param


def _values(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _native(fn, *args):
    """``fn(*args)`` computed on opencl:0 with no fallback anywhere; the result as NumPy."""
    placement.reset_placement_stats()
    out = fn(*args)
    assert str(out.device) == DEV
    host = out.numpy()
    assert not placement.fallbacks, dict(placement.fallbacks)
    return host


def _close(actual: np.ndarray, expected: np.ndarray, dtype: str) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


# --- the declaration -------------------------------------------------------------------------


def test_the_backend_declares_exactly_the_ops_with_kernels() -> None:
    backend = registry.get_backend("opencl")
    assert backend.complex_kernels == complex_ops.NATIVE
    assert dispatch_checks.has_complex_kernel(tc.Device(DEV), "add")
    assert not dispatch_checks.has_complex_kernel(tc.Device(DEV), "exp")
    assert dispatch_checks.has_complex_kernel(tc.Device("cpu"), "exp")  # NumPy computes everything


def test_declarations_normalize() -> None:
    class Declares:
        def __init__(self, value: object) -> None:
            self.complex_kernels = value

    assert dispatch_checks.complex_ops_of(Declares(True)) is True
    assert dispatch_checks.complex_ops_of(Declares(False)) is False
    assert dispatch_checks.complex_ops_of(Declares(frozenset())) is False
    assert dispatch_checks.complex_ops_of(Declares({"add"})) == frozenset({"add"})
    assert dispatch_checks.complex_ops_of(object()) is False  # no attribute: no complex kernels


def test_devices_ops_lists_the_native_complex_ops() -> None:
    out = subprocess.run([sys.executable, "-m", "tensorcore", "devices", "--ops"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("\nopencl: ")[1].split("\n\n")[0]
    assert ("complex numbers (complex64, complex128): native for " + ", ".join(sorted(complex_ops.NATIVE))) in section


# --- elementwise ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((0, 3), (3,))])
def test_binary_ops_broadcast_like_numpy(name: str, shapes: tuple, dtype: str) -> None:
    a, b = _values(dtype, shapes[0], 1), _values(dtype, shapes[1], 2)
    out = _native(getattr(tc, name), tc.asarray(a, device=DEV), tc.asarray(b, device=DEV))
    _close(out, getattr(np, name)(a, b), dtype)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide"])
@pytest.mark.parametrize("scalar", [2, -0.5, 1.5 - 2j, True])
def test_binary_ops_with_python_scalars_on_either_side(name: str, scalar: object, dtype: str) -> None:
    a = _values(dtype, (5, 3))
    x = tc.asarray(a, device=DEV)
    fn = getattr(tc, name)
    _close(_native(fn, x, scalar), getattr(np, name)(a, scalar), dtype)
    _close(_native(fn, scalar, x), getattr(np, name)(scalar, a), dtype)


def test_strided_views_go_through_the_strided_kernels(dtype: str) -> None:
    # Complex views do not arise from tc ops on OpenCL yet (movement ops fall back), so the
    # launcher gets a transposed view of a device buffer directly.
    dev = registry.get_backend("opencl").device(0)
    a, b = _values(dtype, (4, 6), 3), _values(dtype, (6, 4), 4)
    da, db = tc.asarray(a, device=DEV)._data, tc.asarray(b, device=DEV)._data
    at = CLArray(dev, da.buf, (6, 4), da.dtype, (1, 6), 0)  # a.T
    sliced = CLArray(dev, da.buf, (4, 3), da.dtype, (6, 2), 1)  # a[:, 1::2]
    host = registry.get_backend("opencl").to_numpy
    c = np.dtype(dtype)
    _close(host(complex_ops.binary(dev, "multiply", at, db, c)), a.T * b, dtype)
    _close(host(complex_ops.binary(dev, "divide", sliced, 2 - 1j, c)), a[:, 1::2] / (2 - 1j), dtype)
    _close(host(complex_ops.binary(dev, "subtract", 3j, sliced, c)), 3j - a[:, 1::2], dtype)
    _close(host(complex_ops.unary(dev, "abs", at)), np.abs(a.T), dtype)
    _close(host(complex_ops.matmul(dev, at, sliced)), a.T @ a[:, 1::2], dtype)


@pytest.mark.parametrize("name", ["negative", "positive", "conj", "real", "imag", "abs"])
def test_unary_ops_match_numpy(name: str, dtype: str) -> None:
    a = _values(dtype, (3, 5))
    out = _native(getattr(tc, name), tc.asarray(a, device=DEV))
    _close(out, getattr(np, name)(a), dtype)  # real, imag and abs: the real dtype of the precision
    empty = _native(getattr(tc, name), tc.asarray(a[:0], device=DEV))
    assert empty.shape == (0, 5) and empty.dtype == getattr(np, name)(a[:0]).dtype


def test_real_and_imag_are_copies(dtype: str) -> None:
    a = _values(dtype, (4,))
    z = tc.asarray(a, device=DEV)
    r = tc.real(z)
    r[0] = 100.0
    np.testing.assert_array_equal(z.numpy(), a)


def _grid(dtype: str, values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of complex numbers whose parts come from ``values``."""
    zs = np.array([complex(r, i) for r in values for i in values], dtype)
    return np.repeat(zs, len(zs)), np.tile(zs, len(zs))


def _same(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Per element: equal, or both NaN, part by part (for complex) and with the sign of zeros."""
    def part(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (np.isnan(x) & np.isnan(y)) | ((x == y) & (np.signbit(x) == np.signbit(y)))
    if actual.dtype.kind == "c":
        return part(actual.real, expected.real) & part(actual.imag, expected.imag)
    return part(actual, expected)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide"])
def test_special_values_as_numpy_gives_them(name: str, dtype: str) -> None:
    # Both divide with Smith's algorithm and multiply with one fma per part, as NumPy's array
    # loops do, so infinities, NaNs, signed zeros and huge/tiny parts come out the same.
    values = [0.0, -0.0, 1.0, -2.5, INF, -INF, NAN]
    if name != "multiply":  # fma rounding may differ on a CPU without it: keep cancellations out
        values += [1e30, -1e-30]
    a, b = _grid(dtype, values)
    with np.errstate(all="ignore"):
        expected = getattr(np, name)(a, b)
    out = _native(getattr(tc, name), tc.asarray(a, device=DEV), tc.asarray(b, device=DEV))
    bad = ~_same(out, expected)
    assert not bad.any(), list(zip(a[bad], b[bad], out[bad], expected[bad]))[:5]


def test_division_neither_overflows_nor_underflows_needlessly(dtype: str) -> None:
    big = 2.0 ** 1000 if dtype == "complex128" else 2.0 ** 120  # |b|^2 would overflow, 1/|b|^2 underflow
    a = np.array([big + big * 1j, 1 / big + 1j / big, 1 + 1j], dtype)
    b = np.array([big + big * 1j, 1 / big + 1j / big, big - big * 1j], dtype)
    out = _native(tc.divide, tc.asarray(a, device=DEV), tc.asarray(b, device=DEV))
    _close(out, a / b, dtype)
    assert np.isfinite(out).all() and out[0] == 1 and out[1] == 1


def test_abs_uses_hypot(dtype: str) -> None:
    big = 1e300 if dtype == "complex128" else 1e37
    a = np.array([big + big * 1j, 3 + 4j, complex(INF, NAN), complex(NAN, -INF), complex(NAN, 1), 0j], dtype)
    out = _native(tc.abs, tc.asarray(a, device=DEV))
    np.testing.assert_allclose(out[:2], np.abs(a[:2]), rtol=RTOL[dtype])
    assert np.isinf(out[2]) and np.isinf(out[3]) and np.isnan(out[4]) and out[5] == 0


# --- reductions and matmul --------------------------------------------------------------------


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean(axis: object, keepdims: bool, dtype: str) -> None:
    a = _values(dtype, (3, 4, 5))
    x = tc.asarray(a, device=DEV)
    _close(_native(lambda t: tc.sum(t, axis=axis, keepdims=keepdims), x), np.sum(a, axis=axis, keepdims=keepdims), dtype)
    _close(_native(lambda t: tc.mean(t, axis=axis, keepdims=keepdims), x), np.mean(a, axis=axis, keepdims=keepdims), dtype)


def test_sum_of_empty_axes_is_zero(dtype: str) -> None:
    a = np.zeros((0, 3), dtype)
    _close(_native(lambda t: tc.sum(t, axis=0), tc.asarray(a, device=DEV)), a.sum(axis=0), dtype)
    _close(_native(tc.sum, tc.asarray(a, device=DEV)), np.asarray(a.sum()), dtype)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((7, 9), (9, 6)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 3)),
                                    ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((0, 4), (4, 3)), ((3, 0), (0, 2))])
def test_matmul_matches_numpy(shapes: tuple, dtype: str) -> None:
    a, b = _values(dtype, shapes[0], 5), _values(dtype, shapes[1], 6)
    out = _native(tc.matmul, tc.asarray(a, device=DEV), tc.asarray(b, device=DEV))
    _close(out, np.matmul(a, b), dtype)


def test_traced_functions_run_the_complex_kernels_too(dtype: str) -> None:
    a, b = _values(dtype, (3, 4), 7), _values(dtype, (4, 2), 8)
    f = tc.function(lambda x, y: tc.sum(tc.conj(x * 2j - x) @ y, axis=0))
    x, y = tc.asarray(a, device=DEV), tc.asarray(b, device=DEV)
    _close(_native(f, x, y), np.sum(np.conj(a * 2j - a) @ b, axis=0), dtype)
    _close(_native(f, x, y), np.sum(np.conj(a * 2j - a) @ b, axis=0), dtype)  # the compiled graph


# --- what still falls back --------------------------------------------------------------------


def test_other_complex_ops_fall_back_counted(dtype: str) -> None:
    a = _values(dtype, (2, 3))
    z = tc.asarray(a, device=DEV)
    out = tc.exp(z)
    assert str(out.device) == DEV
    np.testing.assert_allclose(out.numpy(), np.exp(a), rtol=RTOL[dtype])
    assert placement.fallbacks["exp", tc.Device(DEV)] == 1
    with placement.placement_policy("strict"):
        with pytest.raises(tc.PlacementError, match="no complex kernels"):
            tc.exp(z)


def test_operands_the_kernels_do_not_take_fall_back_counted() -> None:
    dev = tc.Device(DEV)
    z64 = tc.asarray(_values("complex64", (3,)), device=DEV)
    x = tc.asarray(np.array([1.0, -2.0, 0.5], np.float32), device=DEV)
    np.testing.assert_array_equal((x * 1j).numpy(), np.array([1, -2, 0.5], np.float32) * 1j)  # a real tensor
    assert placement.fallbacks["multiply", dev] == 1
    np.testing.assert_allclose((z64 + x).numpy(), z64.numpy() + x.numpy())
    assert placement.fallbacks["add", dev] == 1
    if registry.get_backend("opencl").device(0).fp64:  # complex64 with complex128: one dtype only
        z128 = tc.asarray(_values("complex128", (3,)), device=DEV)
        np.testing.assert_allclose((z64 * z128).numpy(), z64.numpy() * z128.numpy())
        assert placement.fallbacks["multiply", dev] == 2
    with placement.placement_policy("strict"):
        with pytest.raises(tc.PlacementError, match="no complex kernels"):
            x * 1j


def test_real_ops_are_untouched() -> None:
    x = tc.asarray(np.array([1.0, -2.0], np.float32), device=DEV)
    np.testing.assert_array_equal(_native(lambda t: tc.abs(-t) + t * 2.0, x), np.array([3.0, -2.0], np.float32))
    np.testing.assert_array_equal(_native(lambda t: tc.sum(t @ tc.reshape(t, (2, 1))), x), np.float32(5.0))
