"""Indexing on every device against NumPy: ``x[key]``, ``x[key] = v``, ``take``, ``take_along_axis``."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(4)

# name -> key builder (from the NumPy input) applied to both tensorcore and NumPy
KEYS = {
    "int": lambda a: 1,
    "negative_int": lambda a: (-1, 2),
    "slices": lambda a: (slice(None, None, -1), slice(1, 3)),
    "ellipsis_newaxis": lambda a: (None, ..., 0),
    "int_array": lambda a: np.array([2, 0, 2]),
    "int_array_2d": lambda a: (np.array([[0, 1], [1, 1]]), slice(1, None)),
    "int_arrays_broadcast": lambda a: (np.array([[0], [2]]), np.array([1, 1, 3])),
    "bool_mask": lambda a: a > 0,
    "bool_row_mask": lambda a: np.array([True, False, True]),
    "mixed": lambda a: (slice(0, 2), np.array([3, 3, 0])),
}


def _tc_key(key: object, device: str) -> object:
    def one(k: object) -> object:
        return tc.asarray(k, device=device) if isinstance(k, np.ndarray) else k

    return tuple(one(k) for k in key) if isinstance(key, tuple) else one(key)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_getitem(name: str, device: str) -> None:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    key = KEYS[name](x)
    check_op(lambda a: a[_tc_key(key, device)], lambda a: a[key], [x], device)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_getitem_gradient_accumulates_repeated_indices(name: str, device: str) -> None:
    x = rng.standard_normal((3, 4))
    key = KEYS[name](x)
    check_grad(lambda a: a[_tc_key(key, device)], [x], device)


def test_getitem_with_python_lists_and_scalar_tensors(device: str) -> None:
    x = rng.standard_normal((3, 4))
    t = tc.asarray(x, device=device)
    assert_matches(t[[0, 0]], x[[0, 0]])
    assert_matches(t[tc.asarray(2, device=device)], x[2])
    assert_matches(t[tc.asarray(1, device=device), tc.asarray(3, device=device)], x[1, 3])
    assert [float(v) for v in t[0]] == list(x[0])


def test_getitem_of_empty_and_size_one(device: str) -> None:
    e = np.zeros((0, 3), np.float32)
    check_op(lambda a: a[a > 0], lambda a: a[a > 0], [e], device)
    check_op(lambda a: a[:, 1], lambda a: a[:, 1], [e], device)
    x = rng.standard_normal((1, 3))
    check_op(lambda a: a[tc.asarray(np.zeros(4, np.int64), device=device)], lambda a: a[np.zeros(4, np.int64)], [x], device)
    check_grad(lambda a: a[tc.asarray(np.zeros(4, np.int64), device=device)], [x], device)


def test_setitem(device: str) -> None:
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = tc.asarray(x.copy(), device=device)
    expected = x.copy()
    t[0] = 1.0
    expected[0] = 1.0
    t[1:, ::2] = tc.asarray(np.full((2, 2), 5.0, np.float32), device=device)
    expected[1:, ::2] = 5.0
    t[t < 0] = 0.0
    expected[expected < 0] = 0.0
    t[..., 1] = tc.asarray(np.arange(3), device=device)  # int64 values cast to the tensor's float32
    expected[..., 1] = np.arange(3)
    t[tc.asarray([2, 0], device=device), 3] = tc.asarray(np.array([7.0, 8.0], np.float32), device=device)
    expected[[2, 0], 3] = [7.0, 8.0]
    mask = tc.asarray(np.array([True, False, True]), device=device)
    t[mask] = tc.asarray(np.ones(4, np.float32), device=device)  # broadcast over the selected rows
    expected[[True, False, True]] = 1.0
    assert_matches(t, expected)


def test_setitem_on_a_zero_d_result(device: str) -> None:
    t = tc.sum(tc.asarray(np.ones(3, np.float32), device=device))
    t[()] = 7.0
    assert t.item() == 7.0


def test_setitem_is_refused_on_a_tensor_the_tape_watches(device: str) -> None:
    x = tc.asarray(np.ones(3), device=device)
    with tc.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(tc.GradientError, match=r"setitem: in-place assignment into a float64\[3\] tensor"):
            x[0] = 2.0


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take(axis: int, device: str) -> None:
    x = rng.standard_normal((3, 4))
    idx = np.array([0, 2, 2, 1])
    check_op(lambda a, i: tc.take(a, i, axis=axis), lambda a, i: np.take(a, i, axis=axis), [x, idx], device)
    check_grad(lambda a, i: tc.take(a, i, axis=axis), [x, idx], device, wrt=[0])


@pytest.mark.parametrize(
    "x_shape,idx_shape,axis",
    [((3, 4), (3, 2), 1), ((3, 4), (5, 4), 0), ((3, 4), (1, 6), 1), ((1, 4), (3, 2), 1), ((2, 3, 4), (2, 3, 4), -1), ((5,), (7,), 0)],
)
def test_take_along_axis(x_shape: tuple, idx_shape: tuple, axis: int, device: str) -> None:
    x = rng.standard_normal(x_shape)
    idx = rng.integers(0, x_shape[axis], idx_shape)  # with repeats: gradients must accumulate
    check_op(lambda a, i: tc.take_along_axis(a, i, axis=axis), lambda a, i: np.take_along_axis(a, i, axis), [x, idx], device)
    check_grad(lambda a, i: tc.take_along_axis(a, i, axis=axis), [x, idx], device, wrt=[0])


def test_take_along_axis_with_argsort_and_negative_indices(device: str) -> None:
    x = rng.standard_normal((3, 5))
    t = tc.asarray(x, device=device)
    assert_matches(tc.take_along_axis(t, tc.argsort(t, axis=1), axis=1), np.sort(x, axis=1))
    idx = np.array([[-1, 0], [-2, -2], [4, -5]])
    check_op(lambda a, i: tc.take_along_axis(a, i, axis=1), lambda a, i: np.take_along_axis(a, i, 1), [x, idx], device)
    check_grad(lambda a, i: tc.take_along_axis(a, i, axis=1), [x, idx], device, wrt=[0])
    check_op(lambda a, i: tc.take_along_axis(a, i, axis=0), lambda a, i: np.take_along_axis(a, i, 0),
             [np.zeros((0, 2), np.float32), np.zeros((0, 2), np.int64)], device)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: x[5], r"getitem: invalid index 5 for a tensor of shape \(3, 4\)"),
        (lambda x: x[0, 0, 0], r"getitem: invalid index \(0, 0, 0\) for a tensor of shape \(3, 4\)"),
        (lambda x: x[tc.asarray([True, False])], r"getitem: invalid index .* for a tensor of shape \(3, 4\)"),
        (lambda x: x[tc.asarray([0.5])], r"getitem: index tensors must be integer or bool, got float32\[1\]"),
        (lambda x: x.__setitem__(0, tc.zeros((3,))), r"setitem: invalid index 0 for a tensor of shape \(3, 4\)"),
        (lambda x: tc.take(x, tc.asarray([0])), r"take: axis is required for a 2-D tensor \(shape \(3, 4\)\)"),
        (lambda x: tc.take(x, tc.asarray([0.0]), axis=0), r"take: indices must be an integer tensor"),
        (lambda x: tc.take_along_axis(x, tc.asarray([0, 1]), axis=0),
         r"take_along_axis: x has shape \(3, 4\) and indices has shape \(2,\); expected the same number of dimensions"),
        (lambda x: tc.take_along_axis(x, tc.asarray(np.zeros((2, 2), np.int64)), axis=1),
         r"take_along_axis: x of shape \(3, 4\) and indices of shape \(2, 2\) cannot be broadcast together in dimension 0"),
        (lambda x: tc.take_along_axis(x, tc.asarray(np.zeros((3, 1))), axis=1),
         r"take_along_axis: indices must be an integer tensor, got float64\[3, 1\]"),
        (lambda x: tc.take_along_axis(x, tc.asarray(np.zeros((3, 1), np.int64)), axis=2),
         r"take_along_axis: axis 2 is out of range for a 2-D tensor"),
        # checked on the device where the kernel runs: raised at the next read
        (lambda x: tc.take_along_axis(x, tc.asarray(np.full((3, 1), 9)), axis=1).numpy(),
         r"take_along_axis(: index 9 is| failed on .*float32\[3, 4\].*int64\[3, 1\].*) out of bounds"),
    ],
)
def test_bad_indices_name_the_op_and_the_shapes(call: object, message: str, device: str) -> None:
    x = tc.zeros((3, 4), device=device)
    with pytest.raises(tc.OpError, match=message):
        call(x)
