"""Searching, sorting and set functions on every device against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(3)


# --- argmax / argmin ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_argmax_argmin(name: str, axis: object, keepdims: bool, device: str) -> None:
    ref = getattr(np, name)
    x = rng.integers(0, 4, (3, 5)).astype(np.float32)  # ties: the first index wins
    check_op(lambda a: getattr(tc, name)(a, axis=axis, keepdims=keepdims),
             lambda a: ref(a, axis=axis, keepdims=keepdims).astype(np.int64), [x], device)


def test_argmax_of_integers_and_single_elements(device: str) -> None:
    check_op(tc.argmax, lambda a: np.argmax(a).astype(np.int64), [np.array([3, 9, 9, 1], np.uint8)], device)
    check_op(lambda a: tc.argmin(a, axis=0), lambda a: np.argmin(a, axis=0).astype(np.int64), [np.ones((1, 3))], device)
    assert tc.argmax(tc.asarray(np.float32(1.0), device=device)).item() == 0


# --- nonzero / count_nonzero --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2), (0, 3)])
def test_nonzero(shape: tuple, device: str) -> None:
    x = rng.integers(0, 2, shape).astype(np.float32)
    check_op(tc.nonzero, lambda a: tuple(i.astype(np.int64) for i in np.nonzero(a)), [x], device)
    check_op(tc.nonzero, lambda a: tuple(i.astype(np.int64) for i in np.nonzero(a)), [x > 0], device)


@pytest.mark.parametrize("axis", [None, 0, (0, 2), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_count_nonzero(axis: object, keepdims: bool, device: str) -> None:
    x = rng.integers(0, 3, (2, 3, 4)).astype(np.int32)

    def ref(a: np.ndarray) -> np.ndarray:
        return np.asarray(np.count_nonzero(a, axis=axis, keepdims=keepdims), dtype=np.int64)

    check_op(lambda a: tc.count_nonzero(a, axis=axis, keepdims=keepdims), ref, [x], device)
    check_op(lambda a: tc.count_nonzero(a, axis=axis, keepdims=keepdims), ref, [x > 1], device)


# --- searchsorted -------------------------------------------------------------------------

@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(side: str, device: str) -> None:
    x1 = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    x2 = np.array([[0.5, 2.0, 2.5], [3.0, 5.0, 9.0]])
    ref = lambda a, v: np.searchsorted(a, v, side=side).astype(np.int64)  # noqa: E731
    check_op(lambda a, v: tc.searchsorted(a, v, side=side), ref, [x1, x2], device)
    check_op(lambda a, v: tc.searchsorted(a, v, side=side), ref, [x1.astype(np.int32), np.array([2, 4], np.int32)], device)
    out = tc.searchsorted(tc.asarray(x1, device=device), 2.0, side=side)
    assert out.shape == () and out.item() == np.searchsorted(x1, 2.0, side=side)


def test_searchsorted_with_sorter(device: str) -> None:
    x1 = np.array([3.0, 1.0, 2.0, 7.0])
    sorter = np.argsort(x1)
    x2 = np.array([0.0, 2.0, 4.0, 8.0])
    check_op(lambda a, v, s: tc.searchsorted(a, v, sorter=s),
             lambda a, v, s: np.searchsorted(a, v, sorter=s).astype(np.int64), [x1, x2, sorter], device)


def test_searchsorted_empty(device: str) -> None:
    check_op(tc.searchsorted, lambda a, v: np.searchsorted(a, v).astype(np.int64), [np.zeros(0), np.array([1.0, 2.0])], device)
    check_op(tc.searchsorted, lambda a, v: np.searchsorted(a, v).astype(np.int64), [np.arange(3.0), np.zeros((2, 0))], device)


# --- sort / argsort -----------------------------------------------------------------------

def _argsort_ref(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    # Stable descending order for integer data: ascending order of the negated values.
    key = -a.astype(np.int64) if descending else a
    return np.argsort(key, axis=axis, kind="stable").astype(np.int64)


@pytest.mark.parametrize("axis", [0, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_stable_argsort(axis: int, descending: bool, device: str) -> None:
    x = rng.integers(0, 4, (4, 6)).astype(np.int32)  # many ties: stability is visible
    check_op(lambda a: tc.argsort(a, axis=axis, descending=descending), lambda a: _argsort_ref(a, axis, descending), [x], device)
    check_op(lambda a: tc.sort(a, axis=axis, descending=descending),
             lambda a: np.take_along_axis(a, _argsort_ref(a, axis, descending), axis), [x], device)
    f = rng.standard_normal((3, 5)).astype(np.float32)
    expected = np.sort(f, axis=axis)
    check_op(lambda a: tc.sort(a, axis=axis, descending=descending),
             lambda a: np.flip(expected, axis) if descending else expected, [f], device)


def test_sort_unstable_and_bool(device: str) -> None:
    x = rng.standard_normal(9).astype(np.float32)
    check_op(lambda a: tc.sort(a, stable=False), np.sort, [x], device)
    check_op(lambda a: tc.argsort(a, stable=False), lambda a: np.argsort(a).astype(np.int64), [x], device)
    b = np.array([True, False, True, False])
    check_op(lambda a: tc.sort(a, descending=True), lambda a: np.array([True, True, False, False]), [b], device)


def test_sort_puts_nan_last_ascending_and_first_descending(device: str) -> None:
    x = np.array([2.0, np.nan, -1.0, 0.5], np.float32)
    check_op(tc.sort, np.sort, [x], device)
    check_op(lambda a: tc.sort(a, descending=True), lambda a: np.sort(a)[::-1], [x], device)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_gradient(axis: int, descending: bool, device: str) -> None:
    check_grad(lambda a: tc.sort(a, axis=axis, descending=descending), [rng.standard_normal((3, 4))], device)


def test_sort_of_empty_and_size_one(device: str) -> None:
    check_op(tc.sort, np.sort, [np.zeros((2, 0), np.float32)], device)
    check_op(lambda a: tc.argsort(a, axis=0), lambda a: np.zeros((1, 3), np.int64), [np.ones((1, 3))], device)
    check_grad(lambda a: tc.sort(a, axis=0), [rng.standard_normal((1, 3))], device)


# --- unique -------------------------------------------------------------------------------

def _unique_ref(a: np.ndarray) -> tuple:
    values, index, inverse, counts = np.unique(a.reshape(-1), return_index=True, return_inverse=True,
                                               return_counts=True, equal_nan=False)
    return values, index.astype(np.int64), inverse.reshape(a.shape).astype(np.int64), counts.astype(np.int64)


@pytest.mark.parametrize(
    "x",
    [
        np.array([3.0, 1.0, 3.0, np.nan, 2.0, np.nan, 1.0], np.float32),  # every NaN is distinct
        np.array([[4, 1, 4], [1, 1, 9]], np.int64),
        np.array([True, False, True]),
        np.zeros((0, 2), np.float32),
        np.array([[7]], np.uint8),
    ],
)
def test_unique_functions(x: np.ndarray, device: str) -> None:
    values, index, inverse, counts = _unique_ref(x)
    t = tc.asarray(x, device=device)
    all_ = tc.unique_all(t)
    assert all_._fields == ("values", "indices", "inverse_indices", "counts")
    assert_matches(tuple(all_), (values, index, inverse, counts))
    res = tc.unique_counts(t)
    assert res._fields == ("values", "counts")
    assert_matches(tuple(res), (values, counts))
    res = tc.unique_inverse(t)
    assert res._fields == ("values", "inverse_indices")
    assert_matches(tuple(res), (values, inverse))
    assert_matches(tc.unique_values(t), values)
    assert str(tc.unique_values(t).device) == str(tc.Device(device))


def test_isin(device: str) -> None:
    x1 = rng.integers(0, 6, (3, 4))
    x2 = np.array([1, 3, 5])
    check_op(tc.isin, np.isin, [x1, x2], device)
    check_op(lambda a, b: tc.isin(a, b, invert=True), lambda a, b: np.isin(a, b, invert=True), [x1, x2], device)
    assert_matches(tc.isin(tc.asarray(x1, device=device), 3), np.isin(x1, 3))
    assert tc.isin(4, tc.asarray(x2, device=device)).item() is False


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: tc.argmax(x, axis=2), r"argmax: axis 2 is out of range for a 2-D tensor"),
        (lambda x: tc.argmin(tc.zeros((2, 0)), axis=1), r"argmin: cannot search axis 1 of size 0 \(shape \(2, 0\)\)"),
        (lambda x: tc.argmax(tc.zeros((0,))), r"argmax: cannot search an empty tensor"),
        (lambda x: tc.nonzero(tc.sum(x)), r"nonzero: x must have at least one dimension"),
        (lambda x: tc.count_nonzero(x, axis=(1, -1)), r"count_nonzero: repeated axis"),
        (lambda x: tc.searchsorted(x, x), r"searchsorted: x1 must be a 1-D tensor, got shape \(2, 3\)"),
        (lambda x: tc.searchsorted(x[0], x, side="middle"), r"searchsorted: side must be 'left' or 'right'"),
        (lambda x: tc.searchsorted(x[0], x, sorter=tc.asarray([0, 1])),
         r"searchsorted: sorter must be an integer tensor of x1's shape \(3,\), got int64\[2\]"),
        (lambda x: tc.sort(x, axis=-3), r"sort: axis -3 is out of range for a 2-D tensor"),
        (lambda x: tc.argsort(tc.sum(x)), r"argsort: x must have at least one dimension"),
        (lambda x: tc.unique_values([1, 2]), r"unique_values: expected a tensor, got list"),
        (lambda x: tc.isin(x, [1, 2]), r"isin: x2 must be a tensor or a Python int or float, got list"),
    ],
)
def test_bad_inputs_name_the_op(call: object, message: str, device: str) -> None:
    x = tc.zeros((2, 3), device=device)
    with pytest.raises(tc.OpError, match=message):
        call(x)
