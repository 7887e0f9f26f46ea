"""Reductions and cumulative sums/products on every device against NumPy, with gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(2)

# name -> (tensorcore fn, NumPy reference); each runs over several axis/keepdims choices
REDUCTIONS = {
    "sum": (tc.sum, np.sum),
    "prod": (tc.prod, np.prod),
    "mean": (tc.mean, np.mean),
    "max": (tc.max, np.max),
    "min": (tc.min, np.min),
    "var": (tc.var, np.var),
    "std": (tc.std, np.std),
}
AXES = [None, 0, -1, (0, 2)]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_forward(name: str, axis: object, keepdims: bool, device: str) -> None:
    fn, ref = REDUCTIONS[name]
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    check_op(lambda a: fn(a, axis=axis, keepdims=keepdims), lambda a: ref(a, axis=axis, keepdims=keepdims), [x], device)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
def test_reduction_gradient(name: str, axis: object, device: str) -> None:
    fn, _ = REDUCTIONS[name]
    x = rng.uniform(0.5, 1.5, (2, 3, 2)) * rng.choice([-1, 1], (2, 3, 2))
    check_grad(lambda a: fn(a, axis=axis), [x], device)


def test_var_and_std_correction(device: str) -> None:
    x = rng.standard_normal((3, 4))
    check_op(lambda a: tc.var(a, axis=1, correction=1), lambda a: np.var(a, axis=1, ddof=1), [x], device)
    check_grad(lambda a: tc.std(a, axis=0, correction=1), [x], device)


@pytest.mark.parametrize(
    "x",
    [
        np.array([[1.5, 0.0, 2.0], [0.5, -2.0, 3.0]]),  # one zero in a slice
        np.array([[0.0, 0.0, 2.0], [0.5, -2.0, 3.0]]),  # two zeros in a slice
        np.array([[0.0, 1.0, 2.0], [0.0, -2.0, 0.0]]),
    ],
)
def test_prod_gradient_with_zeros(x: np.ndarray, device: str) -> None:
    check_grad(lambda a: tc.prod(a, axis=1), [x], device)
    check_grad(lambda a: tc.prod(a, axis=0, keepdims=True), [x], device)
    check_grad(tc.prod, [x], device)


def test_boolean_reductions_and_integer_accumulation(device: str) -> None:
    b = rng.standard_normal((3, 4)) > 0
    check_op(lambda a: tc.all(a, axis=1), lambda a: np.all(a, axis=1), [b], device)
    check_op(lambda a: tc.any(a, axis=0, keepdims=True), lambda a: np.any(a, axis=0, keepdims=True), [b], device)
    i8 = rng.integers(-100, 100, (5, 6)).astype(np.int8)
    check_op(lambda a: tc.sum(a, axis=0), lambda a: np.sum(a, axis=0, dtype=np.int64), [i8], device)
    check_op(lambda a: tc.prod(a, dtype=tc.float64), lambda a: np.prod(a, dtype=np.float64), [i8[:2, :2]], device)


def test_empty_reductions(device: str) -> None:
    e = np.zeros((0, 3), np.float32)
    check_op(lambda a: tc.sum(a, axis=0), lambda a: np.sum(a, axis=0), [e], device)
    check_op(lambda a: tc.prod(a, axis=0), lambda a: np.prod(a, axis=0), [e], device)
    check_op(lambda a: tc.max(a, axis=1), lambda a: np.max(a, axis=1), [e], device)
    with pytest.raises(tc.OpError, match=r"max: cannot reduce over axis 0 of size 0 \(shape \(0, 3\)\)"):
        tc.max(tc.asarray(e, device=device), axis=0)


def _with_initial(scan: np.ndarray, axis: int, initial: float) -> np.ndarray:
    shape = list(scan.shape)
    shape[axis] = 1
    return np.concatenate([np.full(shape, initial, scan.dtype), scan], axis=axis)


SCANS = {
    "cumulative_sum": (tc.cumulative_sum, np.cumsum, 0),
    "cumulative_prod": (tc.cumulative_prod, np.cumprod, 1),
}


@pytest.mark.parametrize("name", sorted(SCANS))
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("include_initial", [False, True])
def test_scan_forward(name: str, axis: int, include_initial: bool, device: str) -> None:
    fn, ref, initial = SCANS[name]

    def expected(a: np.ndarray) -> np.ndarray:
        out = ref(a, axis=axis)
        return _with_initial(out, axis, initial) if include_initial else out

    x = rng.standard_normal((3, 4)).astype(np.float32)
    check_op(lambda a: fn(a, axis=axis, include_initial=include_initial), expected, [x], device)


@pytest.mark.parametrize("name", sorted(SCANS))
@pytest.mark.parametrize("include_initial", [False, True])
def test_scan_gradient(name: str, include_initial: bool, device: str) -> None:
    fn, _, _ = SCANS[name]
    x = rng.standard_normal((3, 4))
    check_grad(lambda a: fn(a, axis=1, include_initial=include_initial), [x], device)
    check_grad(lambda a: fn(a[0], include_initial=include_initial), [x], device)  # 1-D: axis optional


def test_cumulative_prod_gradient_with_zeros(device: str) -> None:
    x = np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 0.5], [2.0, 1.0, 0.0, 4.0]])
    check_grad(lambda a: tc.cumulative_prod(a, axis=1), [x], device)
    check_grad(lambda a: tc.cumulative_prod(a, axis=0, include_initial=True), [x], device)


def test_scan_dtypes(device: str) -> None:
    i8 = np.array([100, 100, 100], np.int8)
    check_op(tc.cumulative_sum, lambda a: np.cumsum(a, dtype=np.int64), [i8], device)
    check_op(tc.cumulative_sum, lambda a: np.cumsum(a, dtype=np.int64), [np.array([True, False, True])], device)
    check_op(lambda a: tc.cumulative_prod(a, dtype=tc.float64), lambda a: np.cumprod(a, dtype=np.float64), [i8], device)
    check_op(lambda a: tc.cumulative_sum(a, dtype=tc.int16), lambda a: np.cumsum(a, dtype=np.int16), [i8], device)


def test_scans_of_empty_and_size_one_tensors(device: str) -> None:
    e = tc.zeros((0,), device=device)
    assert_matches(tc.cumulative_sum(e), np.zeros((0,), np.float32))
    assert_matches(tc.cumulative_sum(e, include_initial=True), np.zeros((1,), np.float32))
    assert_matches(tc.cumulative_prod(tc.zeros((2, 0), device=device), axis=1, include_initial=True), np.ones((2, 1), np.float32))
    one = rng.standard_normal((1, 3))
    check_grad(lambda a: tc.cumulative_prod(a, axis=0), [one], device)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: tc.cumulative_sum(x), r"cumulative_sum: axis is required for a 2-D tensor \(shape \(2, 3\)\)"),
        (lambda x: tc.cumulative_prod(x, axis=2), r"cumulative_prod: axis 2 is out of range for a 2-D tensor"),
        (lambda x: tc.cumulative_sum(tc.sum(x)), r"cumulative_sum: x must have at least one dimension"),
        (lambda x: tc.sum(x, axis=(0, 0)), r"sum: repeated axis"),
        (lambda x: tc.mean(x, axis=-3), r"mean: axis -3 is out of range for a 2-D tensor"),
        (lambda x: tc.mean(tc.astype(x, tc.int32)), r"mean: input 0 has dtype int32.*floating-point"),
    ],
)
def test_bad_inputs_name_the_op(call: object, message: str, device: str) -> None:
    x = tc.zeros((2, 3), device=device)
    with pytest.raises(tc.OpError, match=message):
        call(x)
