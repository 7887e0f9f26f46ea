"""complex64 and complex128: dtype rules, creation, elementwise functions with the spec's special
cases, real-only functions, reductions and products, on every device against NumPy.

On ``cpu`` complex ops are NumPy's. Another device runs natively only the ops its backend
declares in ``complex_kernels`` (OpenCL and CUDA: the arithmetic, ``conj``, ``real``, ``imag``,
``abs``, ``sum``, ``mean``, ``matmul``); every other op must run on ``cpu`` under soft placement, counted as
a fallback, and raise under strict placement. The native kernels' own edge cases are in
``test_complex_opencl.py``; gradients are in ``test_complex_grad.py``.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import dispatch_checks, placement

from support import check_op

xp = pytest.importorskip("array_api_strict")

COMPLEX = ["complex64", "complex128"]
NAN, INF = math.nan, math.inf


def _values(dtype: str, shape: tuple[int, ...] = (2, 3), seed: int = 0) -> np.ndarray:
    """Complex values off the real and imaginary axes (away from every branch cut)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.2, 0.9, shape) + 1j * rng.uniform(0.2, 0.9, shape)).astype(dtype)


def _assert_fell_back(op_name: str, device: str) -> None:
    """Off cpu, an op without a complex kernel on the device ran on cpu under soft placement and
    was counted; one with a complex kernel there (``complex_kernels``) ran on the device, uncounted."""
    dev = tc.Device(device)
    if dev.type == "cpu":
        return
    if dispatch_checks.has_complex_kernel(dev, op_name):
        assert placement.fallbacks[op_name, dev] == 0, dict(placement.fallbacks)
    else:
        assert placement.fallbacks[op_name, dev] >= 1, dict(placement.fallbacks)


# --- dtypes --------------------------------------------------------------------------------


def test_complex_promotion_matches_the_standard() -> None:
    names = ["float32", "float64", "complex64", "complex128"]
    for a in names:
        for b in names:
            expected = str(xp.result_type(getattr(xp, a), getattr(xp, b))).rsplit(".", 1)[-1]
            assert tc.result_type(getattr(tc, a), getattr(tc, b)).name == expected, (a, b)
            assert tc.can_cast(getattr(tc, a), getattr(tc, b)) == xp.can_cast(getattr(xp, a), getattr(xp, b)), (a, b)
    for other in ("int64", "uint8", "bool"):
        with pytest.raises(TypeError, match="no Array API type promotion"):
            tc.result_type(tc.complex64, getattr(tc, other))


def test_complex_kinds_finfo_and_namespace_info() -> None:
    assert tc.isdtype(tc.complex64, "complex floating") and tc.isdtype(tc.complex128, "numeric")
    assert not tc.isdtype(tc.complex64, "real floating") and not tc.isdtype(tc.float32, "complex floating")
    for name, real in (("complex64", "float32"), ("complex128", "float64")):
        mine, ref = tc.finfo(getattr(tc, name)), xp.finfo(getattr(xp, name))
        assert (mine.bits, mine.eps, mine.max, mine.min, mine.smallest_normal) == (
            ref.bits, ref.eps, ref.max, ref.min, ref.smallest_normal)
        assert mine.dtype == getattr(tc, real)  # the spec: the real component's dtype
    info = tc.__array_namespace_info__()
    assert info.default_dtypes()["complex floating"] == tc.complex64  # the default float's precision
    assert info.dtypes(kind="complex floating") == {"complex64": tc.complex64, "complex128": tc.complex128}
    assert {"complex64", "complex128"} <= set(info.dtypes(kind="numeric"))


# --- creation and conversion ---------------------------------------------------------------


def test_asarray_of_python_and_numpy_complex(device: str) -> None:
    assert tc.asarray(1j, device=device).dtype == tc.complex64  # the default complex dtype
    nested = tc.asarray([[1, 2j], [3.5, -1 - 1j]], device=device)
    assert nested.dtype == tc.complex64 and str(nested.device) == str(tc.Device(device))
    np.testing.assert_array_equal(nested.numpy(), np.array([[1, 2j], [3.5, -1 - 1j]], np.complex64))
    data = _values("complex128")
    x = tc.asarray(data, device=device)
    assert x.dtype == tc.complex128
    np.testing.assert_array_equal(x.numpy(), data)
    assert tc.asarray([1.0, 2.0], dtype=tc.complex128, device=device).dtype == tc.complex128
    with pytest.raises(TypeError, match="asarray: complex128 data as float64 would drop the imaginary part"):
        tc.asarray(data, dtype=tc.float64, device=device)
    with pytest.raises(TypeError, match="astype: casting complex128 to float32"):
        tc.asarray(x, dtype=tc.float32)


@pytest.mark.parametrize("dtype", COMPLEX)
def test_creation_functions(dtype: str, device: str) -> None:
    dt = getattr(tc, dtype)
    for made, ref in ((tc.zeros((2, 3), dtype=dt, device=device), np.zeros((2, 3), dtype)),
                      (tc.ones((2, 3), dtype=dt, device=device), np.ones((2, 3), dtype)),
                      (tc.empty((2,), dtype=dt, device=device), np.zeros((2,), dtype)),
                      (tc.full((2, 2), 1 - 2j, dtype=dt, device=device), np.full((2, 2), 1 - 2j, dtype)),
                      (tc.eye(3, 4, k=1, dtype=dt, device=device), np.eye(3, 4, k=1, dtype=dtype)),
                      (tc.linspace(0, 2 + 4j, 5, dtype=dt, device=device), np.linspace(0, 2 + 4j, 5, dtype=dtype))):
        assert made.dtype == dt and str(made.device) == str(tc.Device(device))
        np.testing.assert_array_equal(made.numpy(), ref)
    x = tc.asarray(_values(dtype), device=device)
    for fn in (tc.zeros_like, tc.ones_like, tc.empty_like):
        assert fn(x).dtype == dt and fn(x).shape == x.shape
    np.testing.assert_array_equal(tc.full_like(x, 3j).numpy(), np.full((2, 3), 3j, dtype))


def test_complex_fill_values_infer_the_default_complex_dtype(device: str) -> None:
    assert tc.full((2,), 1j, device=device).dtype == tc.complex64
    out = tc.linspace(1j, 2 + 3j, 4, device=device)
    assert out.dtype == tc.complex64
    np.testing.assert_allclose(out.numpy(), np.linspace(1j, 2 + 3j, 4).astype(np.complex64))
    assert tc.linspace(0.0, 1.0, 3, device=device).dtype == tc.float32
    with pytest.raises(TypeError, match="full: a complex value .* needs a complex dtype"):
        tc.full((2,), 1j, dtype=tc.float32, device=device)
    with pytest.raises(TypeError, match="linspace: a complex value"):
        tc.linspace(0, 1j, 3, dtype=tc.float64, device=device)


def test_astype_to_and_from_complex(device: str) -> None:
    real = tc.asarray([1.5, -2.0], device=device)
    z = tc.astype(real, tc.complex64)
    assert z.dtype == tc.complex64
    np.testing.assert_array_equal(z.numpy(), np.array([1.5, -2.0], np.complex64))
    np.testing.assert_array_equal(tc.astype(z, tc.complex128).numpy(), np.array([1.5, -2.0], np.complex128))
    with pytest.raises(TypeError, match="astype: casting complex64 to float32 would drop the imaginary part"):
        tc.astype(z, tc.float32)
    with pytest.raises(TypeError, match="astype: casting complex64 to int64"):
        z.astype(tc.int64)


def test_python_scalars_item_and_numpy(device: str) -> None:
    x = tc.asarray(np.array([3 - 4j], np.complex128), device=device)
    assert complex(x) == 3 - 4j and x.item() == 3 - 4j and type(x.item()) is complex
    assert x.tolist() == [3 - 4j] and bool(x)
    for convert in (float, int):
        with pytest.raises(TypeError, match="a complex number has no"):
            convert(x)
    assert complex(tc.asarray([2.0], device=device)) == 2 + 0j  # every numeric tensor has a complex value
    assert np.asarray(x).dtype == np.complex128


def test_dlpack_of_complex_shares_memory_on_cpu() -> None:
    data = _values("complex64")
    t = tc.from_dlpack(data)
    assert t.dtype == tc.complex64
    data[0, 0] = 7 + 7j  # shared, not copied
    assert t.numpy()[0, 0] == 7 + 7j
    back = np.from_dlpack(t)
    assert back.dtype == np.complex64 and np.shares_memory(back, data)


# --- elementwise functions -----------------------------------------------------------------

UNARY = ["abs", "sign", "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "square", "sin", "cos", "tan",
         "sinh", "cosh", "tanh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "negative", "positive",
         "reciprocal", "round", "conj", "real", "imag", "isfinite", "isinf", "isnan"]
NUMPY_NAMES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh",
               "atanh": "arctanh", "pow": "power", "divide": "true_divide"}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("name", UNARY)
def test_unary_matches_numpy(name: str, dtype: str, device: str) -> None:
    data = _values(dtype) * 3 - (1 + 1j)  # all four quadrants
    data[0, :2] = [2.5 + 0.5j, -1.5 - 2.5j]  # one rounding to even in each part
    ref = getattr(np, NUMPY_NAMES.get(name, name))
    check_op(getattr(tc, name), ref, [data], device)
    _assert_fell_back(name, device)


def test_abs_and_parts_have_the_real_dtype_of_the_precision(device: str) -> None:
    for dtype, real in (("complex64", tc.float32), ("complex128", tc.float64)):
        z = tc.asarray(_values(dtype), device=device)
        assert tc.abs(z).dtype == real and tc.real(z).dtype == real and tc.imag(z).dtype == real
        assert abs(z).dtype == real


def test_real_of_a_complex_tensor_is_a_copy(device: str) -> None:
    z = tc.asarray(np.array([1 + 2j, 3 + 4j]), device=device)
    r = tc.real(z)
    r[0] = 9.0
    np.testing.assert_array_equal(z.numpy(), [1 + 2j, 3 + 4j])


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "pow", "equal", "not_equal"])
def test_binary_matches_numpy(name: str, dtype: str, device: str) -> None:
    a, b = _values(dtype, seed=1), _values(dtype, (3,), seed=2)  # broadcasting
    a[0, 0] = b[0]  # one equal pair
    ref = getattr(np, NUMPY_NAMES.get(name, name))
    check_op(getattr(tc, name), ref, [a, b], device)
    _assert_fell_back(name, device)


def test_mixed_real_and_complex_operands(device: str) -> None:
    x32 = np.array([1.0, -2.0, 0.5], np.float32)
    x64 = x32.astype(np.float64)
    z64 = _values("complex64", (3,))
    check_op(tc.multiply, np.multiply, [x32, z64], device)  # complex64
    check_op(tc.add, np.add, [x64, z64], device)  # float64 with complex64: complex128
    t = tc.asarray(x32, device=device)
    for out, ref in ((t + 1j, x32 + np.complex64(1j)), (2j * t, np.complex64(2j) * x32), (t / (1 - 1j), x32 / np.complex64(1 - 1j))):
        assert out.dtype == tc.complex64 and str(out.device) == str(tc.Device(device))  # Python complex: weakly typed
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)


# Special cases from the 2023.12 standard's tables, with the value NumPy (C99 Annex G) gives.
# (input, expected); a NaN part matches any NaN, an "either sign" part is compared by magnitude.
SPECIAL = {
    "exp": [(complex(INF, NAN), complex(INF, NAN)), (complex(-INF, NAN), complex(0, 0)),
            (complex(0.0, 0.0), complex(1, 0)), (complex(NAN, 0.0), complex(NAN, 0.0))],
    "log": [(complex(-0.0, 0.0), complex(-INF, math.pi)), (complex(0.0, 0.0), complex(-INF, 0.0)),
            (complex(INF, NAN), complex(INF, NAN))],
    "sqrt": [(complex(-INF, NAN), complex(NAN, INF)), (complex(1.0, INF), complex(INF, INF)),
             (complex(NAN, INF), complex(INF, INF)), (complex(INF, NAN), complex(INF, NAN))],
    "acos": [(complex(0.0, NAN), complex(math.pi / 2, NAN)), (complex(-INF, INF), complex(3 * math.pi / 4, -INF))],
    "acosh": [(complex(INF, NAN), complex(INF, NAN)), (complex(0.0, 0.0), complex(0.0, math.pi / 2))],
    "sinh": [(complex(0.0, 0.0), complex(0.0, 0.0)), (complex(INF, 0.0), complex(INF, 0.0))],
    "abs": [(complex(INF, NAN), INF), (complex(NAN, -INF), INF), (complex(-0.0, -3.0), 3.0)],
    "sign": [(complex(0.0, -0.0), complex(0, 0)), (complex(NAN, 0.0), complex(NAN, NAN)), (complex(-3, 4), complex(-0.6, 0.8))],
    "isinf": [(complex(INF, NAN), True), (complex(NAN, -INF), True), (complex(NAN, 1.0), False)],
    "isnan": [(complex(1.0, NAN), True), (complex(INF, 0.0), False)],
}


def _same(actual: complex, expected: complex) -> bool:
    parts = [(actual.real, expected.real), (actual.imag, expected.imag)] if isinstance(expected, complex) else [(actual, expected)]
    return all((math.isnan(a) and math.isnan(e)) or a == e or cmath.isclose(a, e, rel_tol=1e-6) for a, e in parts)


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_the_standards_special_cases(name: str, device: str) -> None:
    inputs = [z for z, _ in SPECIAL[name]]
    with np.errstate(all="ignore"):
        got = getattr(tc, name)(tc.asarray(np.array(inputs, np.complex128), device=device)).numpy().tolist()
    for z, out, (_, expected) in zip(inputs, got, SPECIAL[name]):
        assert _same(out, expected), f"{name}({z}) = {out}, the standard says {expected}"


def test_comparisons_of_complex_nans_are_false(device: str) -> None:
    z = tc.asarray(np.array([complex(NAN, 0), 1 + 1j, complex(0, NAN)]), device=device)
    np.testing.assert_array_equal(tc.equal(z, z).numpy(), [False, True, False])
    np.testing.assert_array_equal((z != z).numpy(), [True, False, True])


# --- real-only functions -------------------------------------------------------------------

REAL_ONLY = {
    "floor": lambda z, v: tc.floor(z), "ceil": lambda z, v: tc.ceil(z), "trunc": lambda z, v: tc.trunc(z),
    "signbit": lambda z, v: tc.signbit(z), "maximum": lambda z, v: tc.maximum(z, z), "minimum": lambda z, v: tc.minimum(z, 1.0),
    "clip": lambda z, v: tc.clip(z, 0.0, 1.0), "less": lambda z, v: z < z, "less_equal": lambda z, v: tc.less_equal(z, z),
    "greater": lambda z, v: tc.greater(1.0, z), "greater_equal": lambda z, v: z >= 0, "remainder": lambda z, v: z % 2,
    "floor_divide": lambda z, v: z // z, "atan2": lambda z, v: tc.atan2(z, z), "copysign": lambda z, v: tc.copysign(z, z),
    "logaddexp": lambda z, v: tc.logaddexp(z, z), "hypot": lambda z, v: tc.hypot(z, z), "nextafter": lambda z, v: tc.nextafter(z, z),
    "sort": lambda z, v: tc.sort(z), "argsort": lambda z, v: tc.argsort(z), "argmax": lambda z, v: tc.argmax(z),
    "argmin": lambda z, v: tc.argmin(z), "max": lambda z, v: tc.max(z), "min": lambda z, v: tc.min(z), "var": lambda z, v: tc.var(z),
    "std": lambda z, v: tc.std(z), "searchsorted": lambda z, v: tc.searchsorted(v, v),
}


@pytest.mark.parametrize("name", sorted(REAL_ONLY))
def test_real_only_functions_refuse_complex_with_a_type_error(name: str, device: str) -> None:
    z, v = tc.asarray(_values("complex64"), device=device), tc.asarray(_values("complex64", (4,)), device=device)
    fn = "var" if name == "std" else name  # std is sqrt(var)
    with pytest.raises(TypeError, match=fr"{fn} is defined for real numbers only, but input \d is complex64"):
        REAL_ONLY[name](z, v)
    assert not placement.fallbacks  # refused before any placement: nothing ran, nothing was copied


def test_a_python_complex_is_refused_by_real_only_functions(device: str) -> None:
    x = tc.asarray([1.0, 2.0], device=device)
    with pytest.raises(TypeError, match="maximum is defined for real numbers only, but input 1 is a Python complex"):
        tc.maximum(x, 1j)
    with pytest.raises(tc.OpError):  # an OpError too, like every input an op refuses
        tc.floor(tc.asarray([1j], device=device))
    with pytest.raises(TypeError, match="clip is defined for real numbers only, but input 2 is a Python complex"):
        tc.clip(x, 0.0, 1j)  # a bound, not only the first input
    # a real-only function outside the elementwise family (every tc.linalg function takes complex)
    with pytest.raises(TypeError, match="fft.rfft: x has dtype complex64, but fft.rfft takes real floating-point inputs"):
        tc.fft.rfft(tc.asarray(np.ones(4, dtype=np.complex64), device=device))


# --- reductions and products ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", COMPLEX)
def test_reductions(dtype: str, device: str) -> None:
    data = _values(dtype, (3, 4))
    check_op(lambda x: tc.sum(x, axis=1), lambda x: np.sum(x, axis=1), [data], device)
    check_op(lambda x: tc.prod(x, axis=0), lambda x: np.prod(x, axis=0), [data], device)
    check_op(lambda x: tc.mean(x), lambda x: np.asarray(np.mean(x)), [data], device)  # stays complex
    check_op(lambda x: tc.cumulative_sum(x, axis=1), lambda x: np.cumsum(x, axis=1), [data], device)
    for name in ("sum", "prod", "mean", "cumulative_sum"):
        _assert_fell_back(name, device)


@pytest.mark.parametrize("dtype", COMPLEX)
def test_matmul_tensordot_and_vecdot(dtype: str, device: str) -> None:
    a, b = _values(dtype, (2, 3, 4), seed=3), _values(dtype, (4, 5), seed=4)
    check_op(tc.matmul, np.matmul, [a, b], device, rtol=1e-5)
    check_op(lambda x, y: tc.tensordot(x, y, axes=1), lambda x, y: np.tensordot(x, y, axes=1), [a, b], device, rtol=1e-5)
    u, v = _values(dtype, (3, 4), seed=5), _values(dtype, (4,), seed=6)
    # vecdot conjugates its first argument: sum(conj(u) * v), as np.vecdot does
    check_op(tc.vecdot, lambda x, y: np.sum(np.conj(x) * y, axis=-1), [u, v], device, rtol=1e-5)
    np.testing.assert_allclose(tc.vecdot(tc.asarray(u, device=device), tc.asarray(v, device=device)).numpy(),
                               np.vecdot(u, v), rtol=1e-5)
    _assert_fell_back("matmul", device)


@pytest.mark.parametrize("order", [2, 1, 0, 3, math.inf, -math.inf])
def test_vector_norm_of_complex_is_real(order: float, device: str) -> None:
    data = _values("complex128", (3, 4))
    data[0, 0] = 0
    out = tc.linalg.vector_norm(tc.asarray(data, device=device), axis=1, ord=order)
    assert out.dtype == tc.float64
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(data, ord=order, axis=1), rtol=1e-12)


@pytest.mark.parametrize("order", ["fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf])
def test_matrix_norm_of_complex_is_real(order: object, device: str) -> None:
    data = _values("complex64", (2, 3, 3))
    out = tc.linalg.matrix_norm(tc.asarray(data, device=device), ord=order)
    assert out.dtype == tc.float32  # "nuc", 2 and -2 through the complex svdvals
    np.testing.assert_allclose(out.numpy(), np.linalg.norm(data, ord=order, axis=(-2, -1)), rtol=1e-5)


# --- devices without complex kernels for an op --------------------------------------------


@pytest.fixture
def accelerator(device: str) -> tc.Device:
    """Each device other than cpu (which has complex kernels for some ops at most)."""
    if tc.Device(device).type == "cpu":
        pytest.skip("cpu computes complex numbers natively")
    return tc.Device(device)


def test_complex_tensors_live_on_the_device_and_ops_without_kernels_run_on_cpu(accelerator: tc.Device) -> None:
    data = _values("complex64")
    z = tc.asarray(data).to_device(accelerator)
    assert z.device == accelerator
    out = tc.exp(z) * 2j
    assert out.device == accelerator and out.dtype == tc.complex64
    np.testing.assert_allclose(out.numpy(), np.exp(data) * np.complex64(2j), rtol=1e-6)
    assert not dispatch_checks.has_complex_kernel(accelerator, "exp")  # no device has a complex exp yet
    assert placement.fallbacks["exp", accelerator] == 1
    # a complex tensor times a Python complex: on the device where multiply has a complex kernel
    assert placement.fallbacks["multiply", accelerator] == (0 if dispatch_checks.has_complex_kernel(accelerator, "multiply") else 1)
    np.testing.assert_array_equal(z.to_device("cpu").numpy(), data)  # the bytes are stored as they are


def test_real_ops_that_make_complex_numbers_fall_back_too(accelerator: tc.Device) -> None:
    x = tc.asarray(np.array([1.0, -2.0], np.float32), device=accelerator)
    np.testing.assert_array_equal((x * 1j).numpy(), np.array([1j, -2j], np.complex64))  # a Python complex operand
    np.testing.assert_array_equal(tc.astype(x, tc.complex64).numpy(), np.array([1, -2], np.complex64))
    assert placement.fallbacks["multiply", accelerator] == 1 and placement.fallbacks["astype", accelerator] == 1
    tc.synchronize()
    placement.reset_placement_stats()
    _ = x * 2.0 + x  # real ops stay on the device
    assert not placement.fallbacks


def test_strict_placement_refuses_complex_ops_off_cpu(accelerator: tc.Device) -> None:
    z = tc.asarray(_values("complex64"), device=accelerator)  # storing is fine
    with placement.placement_policy("strict"):
        with pytest.raises(tc.PlacementError, match="op 'exp' on .*: no complex kernels"):
            tc.exp(z)
        with pytest.raises(tc.PlacementError, match="no complex kernels"):
            tc.asarray([1.0, 2.0], device=accelerator) * 1j


def test_writes_into_a_complex_tensor_off_cpu(accelerator: tc.Device) -> None:
    data = _values("complex128", (4,))
    z = tc.asarray(data, device=accelerator)
    z[1] = 5 - 5j
    data[1] = 5 - 5j
    np.testing.assert_array_equal(z.numpy(), data)
    assert placement.fallbacks["setitem", accelerator] == 1


def test_traced_functions_run_complex_nodes_on_cpu(accelerator: tc.Device) -> None:
    data = _values("complex64")
    f = tc.function(lambda z: tc.sum(tc.abs(tc.exp(z) + 1j)))
    out = f(tc.asarray(data, device=accelerator))
    assert out.device == accelerator
    np.testing.assert_allclose(out.numpy(), np.sum(np.abs(np.exp(data) + np.complex64(1j))), rtol=1e-5)


@pytest.mark.parametrize("draw", ["uniform", "normal", "bernoulli"])
def test_random_refuses_a_complex_dtype_rather_than_zero_imaginary_parts(draw: str) -> None:
    fn = getattr(tc.random, draw)
    args = (0.5,) if draw == "bernoulli" else ()
    with pytest.raises(TypeError, match=rf"tc.random.{draw} draws real numbers, not complex64; .* as float32"):
        fn((3,), *args, dtype=tc.complex64)
    assert fn((3,), *args, dtype=tc.float64).dtype == tc.float64  # real dtypes as before


# --- linalg: the decompositions whose results keep the input's dtype -----------------------------

def _complex_matrices(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_linalg_of_complex_matrices_matches_numpy(device: str, dtype: str) -> None:
    a, b = _complex_matrices((3, 4, 4), dtype), _complex_matrices((3, 4, 2), dtype)
    h = a @ np.conj(np.swapaxes(a, -1, -2)) + 4 * np.eye(4, dtype=dtype)  # Hermitian positive definite
    ta, tb, th = (tc.asarray(t, device=device) for t in (a, b, h))
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == "complex64" else {"rtol": 1e-10, "atol": 1e-10}
    cases = {
        "inv": (tc.linalg.inv(ta), np.linalg.inv(a)),
        "solve": (tc.linalg.solve(ta, tb), np.linalg.solve(a, b)),
        "solve, one vector": (tc.linalg.solve(ta[0], tb[0, :, 0]), np.linalg.solve(a[0], b[0, :, 0])),
        "det": (tc.linalg.det(ta), np.linalg.det(a)),
        "qr, Q": (tc.linalg.qr(ta).Q, np.linalg.qr(a)[0]),
        "qr, R": (tc.linalg.qr(ta).R, np.linalg.qr(a)[1]),
        "cholesky": (tc.linalg.cholesky(th), np.linalg.cholesky(h)),
        "cholesky, upper (the conjugate transpose)": (tc.linalg.cholesky(th, upper=True), np.linalg.cholesky(h, upper=True)),
    }
    for name, (got, want) in cases.items():
        assert got.dtype == np.dtype(dtype) and str(got.device) == str(tc.Device(device)), name
        np.testing.assert_allclose(got.numpy(), want, err_msg=name, **tol)
    upper = cases["cholesky, upper (the conjugate transpose)"][0].numpy()
    np.testing.assert_allclose(np.conj(np.swapaxes(upper, -1, -2)) @ upper, h, **tol)


# Their complex gradients, and the one linalg gradient that is refused (qr(mode='complete') with
# M > N), are checked in test_linalg_complex_grad.py.
