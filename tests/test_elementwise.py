"""Elementwise ops on every device against NumPy, with float64 finite-difference gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(0)

# name -> (numpy reference, input sampler giving values in the op's domain)
UNARY = {
    "abs": (np.abs, lambda s: rng.standard_normal(s)),
    "negative": (np.negative, lambda s: rng.standard_normal(s)),
    "exp": (np.exp, lambda s: rng.standard_normal(s)),
    "expm1": (np.expm1, lambda s: rng.standard_normal(s)),
    "log": (np.log, lambda s: rng.uniform(0.5, 2.0, s)),
    "log1p": (np.log1p, lambda s: rng.uniform(-0.5, 2.0, s)),
    "log2": (np.log2, lambda s: rng.uniform(0.5, 2.0, s)),
    "log10": (np.log10, lambda s: rng.uniform(0.5, 2.0, s)),
    "sqrt": (np.sqrt, lambda s: rng.uniform(0.5, 2.0, s)),
    "square": (np.square, lambda s: rng.standard_normal(s)),
    "sin": (np.sin, lambda s: rng.standard_normal(s)),
    "cos": (np.cos, lambda s: rng.standard_normal(s)),
    "tan": (np.tan, lambda s: rng.uniform(-1, 1, s)),
    "asin": (np.arcsin, lambda s: rng.uniform(-0.8, 0.8, s)),
    "acos": (np.arccos, lambda s: rng.uniform(-0.8, 0.8, s)),
    "atan": (np.arctan, lambda s: rng.standard_normal(s)),
    "sinh": (np.sinh, lambda s: rng.standard_normal(s)),
    "cosh": (np.cosh, lambda s: rng.standard_normal(s)),
    "tanh": (np.tanh, lambda s: rng.standard_normal(s)),
    "asinh": (np.arcsinh, lambda s: rng.standard_normal(s)),
    "acosh": (np.arccosh, lambda s: rng.uniform(1.5, 3.0, s)),
    "atanh": (np.arctanh, lambda s: rng.uniform(-0.8, 0.8, s)),
    "reciprocal": (np.reciprocal, lambda s: rng.uniform(0.5, 2.0, s)),
    "floor": (np.floor, lambda s: rng.uniform(-3, 3, s) + 0.25),
    "ceil": (np.ceil, lambda s: rng.uniform(-3, 3, s) + 0.25),
    "trunc": (np.trunc, lambda s: rng.uniform(-3, 3, s) + 0.25),
    "round": (np.round, lambda s: rng.uniform(-3, 3, s) + 0.25),
    "sign": (np.sign, lambda s: rng.standard_normal(s)),
}

BINARY = {
    "add": (np.add, None),
    "subtract": (np.subtract, None),
    "multiply": (np.multiply, None),
    "divide": (np.divide, "positive"),
    "pow": (np.power, "positive"),
    "maximum": (np.maximum, None),
    "minimum": (np.minimum, None),
    "atan2": (np.arctan2, None),
    "hypot": (np.hypot, None),
    "logaddexp": (np.logaddexp, None),
    "remainder": (np.remainder, "positive"),
    "copysign": (np.copysign, None),
}


def _sample(kind: str | None, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.5, 2.0, shape) if kind == "positive" else rng.standard_normal(shape)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_forward(name: str, dtype: type, device: str) -> None:
    ref, sample = UNARY[name]
    x = sample((3, 5)).astype(dtype)
    check_op(getattr(tc, name), ref, [x], device, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradient(name: str, device: str) -> None:
    _, sample = UNARY[name]
    check_grad(getattr(tc, name), [sample((2, 3))], device)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 2))])
def test_binary_forward_broadcasting(name: str, shapes: tuple, device: str) -> None:
    ref, kind = BINARY[name]
    a, b = (_sample(kind, s).astype(np.float32) for s in shapes)
    check_op(getattr(tc, name), ref, [a, b], device)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3))])
def test_binary_gradient_with_broadcasting(name: str, shapes: tuple, device: str) -> None:
    _, kind = BINARY[name]
    a, b = (_sample(kind, s) for s in shapes)
    if name in ("maximum", "minimum"):
        b = b + 0.1  # keep away from ties, where the derivative does not exist
    check_grad(getattr(tc, name), [a, b], device)


def test_operators_and_python_scalars_keep_the_tensor_dtype(device: str) -> None:
    x_np = rng.standard_normal((4,)).astype(np.float32)
    x = tc.asarray(x_np, device=device)
    assert_matches(x + 1.5, x_np + np.float32(1.5))
    assert_matches(2 * x, 2 * x_np)
    assert_matches(1 - x, 1 - x_np)
    assert_matches(x / 2, x_np / 2)
    assert_matches(x**2, x_np**2)
    assert_matches(-x, -x_np)
    assert_matches(x > 0, x_np > 0)
    ints = tc.asarray(np.arange(6, dtype=np.int32), device=device)
    assert_matches(ints // 4, np.arange(6, dtype=np.int32) // 4)
    assert_matches(ints % 4, np.arange(6, dtype=np.int32) % 4)
    assert_matches(ints & 3, np.arange(6, dtype=np.int32) & 3)


@pytest.mark.parametrize(
    "name,ref",
    [("equal", np.equal), ("not_equal", np.not_equal), ("less", np.less), ("less_equal", np.less_equal),
     ("greater", np.greater), ("greater_equal", np.greater_equal), ("logical_and", np.logical_and),
     ("logical_or", np.logical_or), ("logical_xor", np.logical_xor)],
)
def test_comparisons_and_logic(name: str, ref: object, device: str) -> None:
    a = rng.integers(0, 3, (4, 5)).astype(np.int64)
    b = rng.integers(0, 3, (5,)).astype(np.int64)
    if name.startswith("logical"):
        a, b = a > 0, b > 1
    check_op(getattr(tc, name), ref, [a, b], device)


def test_where_clip_astype_with_gradients(device: str) -> None:
    cond = rng.standard_normal((3, 4)) > 0
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    check_op(tc.where, np.where, [cond, a, b], device)
    check_grad(lambda c, x, y: tc.where(c, x, y), [cond, a, b], device, wrt=[1, 2])
    check_op(lambda x: tc.clip(x, min=-0.5, max=0.5), lambda x: np.clip(x, -0.5, 0.5), [a], device)
    check_grad(lambda x: tc.clip(x, min=-0.5, max=0.5), [a + 0.01], device)
    check_op(lambda x: tc.astype(x, tc.int32), lambda x: x.astype(np.int32), [a * 10], device)
    # float64 -> float32 -> float64: the gradient is 1; a wide step keeps float32 rounding out of it
    check_grad(lambda x: tc.astype(tc.astype(x, tc.float32), tc.float64), [a], device, eps=1e-2, rtol=1e-4)


def test_float_only_op_rejects_integers_naming_the_op(device: str) -> None:
    x = tc.asarray(np.arange(4), device=device)
    with pytest.raises(tc.OpError, match=r"exp: input 0 has dtype int64.*floating-point"):
        tc.exp(x)


def test_non_broadcastable_shapes_name_op_and_shapes(device: str) -> None:
    a = tc.zeros((2, 3), device=device)
    b = tc.zeros((4,), device=device)
    with pytest.raises(tc.OpError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        a + b


@pytest.mark.parametrize(
    "name,ref",
    [("isfinite", np.isfinite), ("isinf", np.isinf), ("isnan", np.isnan), ("signbit", np.signbit),
     ("logical_not", np.logical_not), ("positive", np.positive)],
)
def test_predicates_and_identity_ops(name: str, ref: object, device: str) -> None:
    x = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan], np.float32)
    if name == "logical_not":
        x = x > 0
    check_op(getattr(tc, name), ref, [x], device)


@pytest.mark.parametrize(
    "name,ref",
    [("bitwise_and", np.bitwise_and), ("bitwise_or", np.bitwise_or), ("bitwise_xor", np.bitwise_xor),
     ("bitwise_left_shift", np.left_shift), ("bitwise_right_shift", np.right_shift)],
)
def test_bitwise_ops(name: str, ref: object, device: str) -> None:
    a = rng.integers(0, 64, (3, 4)).astype(np.int32)
    b = rng.integers(0, 4, (4,)).astype(np.int32)
    check_op(getattr(tc, name), ref, [a, b], device)
    check_op(tc.bitwise_invert, np.invert, [a], device)


def test_nextafter_floor_divide_and_complex_parts(device: str) -> None:
    a, b = rng.standard_normal((5,)), rng.standard_normal((5,))
    check_op(tc.nextafter, np.nextafter, [a, b], device, rtol=0, atol=0)
    check_op(tc.floor_divide, np.floor_divide, [a, b + 3.0], device)
    x = tc.asarray(a, device=device)
    assert tc.real(x) is x and tc.conj(x) is x
    np.testing.assert_array_equal(tc.imag(x).numpy(), np.zeros(5))
