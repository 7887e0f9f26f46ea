"""Shape manipulation ops on every device against NumPy, with float64 gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(1)


def _x(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# name -> (tensorcore fn, NumPy reference, input shapes); every case is also gradient-checked
CASES = {
    "reshape": (lambda x: tc.reshape(x, (3, -1)), lambda x: x.reshape(3, -1), [(2, 3, 2)]),
    "permute_dims": (lambda x: tc.permute_dims(x, (2, 0, 1)), lambda x: x.transpose(2, 0, 1), [(2, 3, 4)]),
    "matrix_transpose": (tc.matrix_transpose, lambda x: np.swapaxes(x, -1, -2), [(2, 3, 4)]),
    "broadcast_to": (lambda x: tc.broadcast_to(x, (2, 3, 4)), lambda x: np.broadcast_to(x, (2, 3, 4)), [(3, 1)]),
    "expand_dims": (lambda x: tc.expand_dims(x, axis=-1), lambda x: x[..., None], [(2, 3)]),
    "squeeze": (lambda x: tc.squeeze(x, axis=(0, 2)), lambda x: x.squeeze((0, 2)), [(1, 3, 1)]),
    "concat": (lambda a, b: tc.concat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1), [(2, 3), (2, 1)]),
    "concat_none": (lambda a, b: tc.concat([a, b], axis=None), lambda a, b: np.concatenate([a, b], None), [(2, 3), (4,)]),
    "stack": (lambda a, b: tc.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1), [(2, 3), (2, 3)]),
    "flip_all": (tc.flip, np.flip, [(2, 3)]),
    "flip_axis": (lambda x: tc.flip(x, axis=-1), lambda x: np.flip(x, -1), [(2, 3, 2)]),
    "flip_axes": (lambda x: tc.flip(x, axis=(0, 2)), lambda x: np.flip(x, (0, 2)), [(2, 3, 2)]),
    "roll_flat": (lambda x: tc.roll(x, 4), lambda x: np.roll(x, 4), [(2, 3)]),
    "roll_axis": (lambda x: tc.roll(x, -1, axis=1), lambda x: np.roll(x, -1, 1), [(2, 3)]),
    "roll_axes": (lambda x: tc.roll(x, (1, 5), axis=(0, -1)), lambda x: np.roll(x, (1, 5), (0, -1)), [(2, 3, 4)]),
    "tile_short_reps": (lambda x: tc.tile(x, (2,)), lambda x: np.tile(x, (2,)), [(2, 3)]),
    "tile_long_reps": (lambda x: tc.tile(x, (2, 1, 3)), lambda x: np.tile(x, (2, 1, 3)), [(2, 3)]),
    "repeat_flat": (lambda x: tc.repeat(x, 2), lambda x: np.repeat(x, 2), [(2, 3)]),
    "repeat_axis": (lambda x: tc.repeat(x, 3, axis=0), lambda x: np.repeat(x, 3, 0), [(2, 3)]),
    "moveaxis": (lambda x: tc.moveaxis(x, 0, -1), lambda x: np.moveaxis(x, 0, -1), [(2, 3, 4)]),
    "moveaxis_many": (lambda x: tc.moveaxis(x, (0, 1), (2, 0)), lambda x: np.moveaxis(x, (0, 1), (2, 0)), [(2, 3, 4)]),
    "unstack": (lambda x: tc.unstack(x, axis=1), lambda x: tuple(np.moveaxis(x, 1, 0)), [(2, 3, 2)]),
    "diff": (tc.diff, np.diff, [(2, 5)]),
    "diff_n2_axis0": (lambda x: tc.diff(x, n=2, axis=0), lambda x: np.diff(x, 2, 0), [(4, 3)]),
    "diff_prepend_append": (
        lambda x, p, a: tc.diff(x, axis=0, prepend=p, append=a),
        lambda x, p, a: np.diff(x, axis=0, prepend=p, append=a), [(3, 2), (1, 2), (2, 2)],
    ),
    "broadcast_arrays": (
        lambda a, b: tuple(tc.broadcast_arrays(a, b)), lambda a, b: tuple(np.broadcast_arrays(a, b)), [(3, 1), (4,)],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward(name: str, device: str) -> None:
    fn, ref, shapes = CASES[name]
    check_op(fn, ref, [_x(*s).astype(np.float32) for s in shapes], device)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient(name: str, device: str) -> None:
    fn, _, shapes = CASES[name]
    check_grad(fn, [_x(*s) for s in shapes], device)


def test_repeat_with_a_tensor_of_counts(device: str) -> None:
    x = _x(3, 2)
    counts = np.array([2, 0, 3])
    check_op(lambda a: tc.repeat(a, tc.asarray(counts, device=device), axis=0), lambda a: np.repeat(a, counts, 0), [x], device)
    check_grad(lambda a: tc.repeat(a, tc.asarray(counts, device=device), axis=0), [x], device)
    check_op(lambda a: tc.repeat(a, tc.asarray([2], device=device), axis=1), lambda a: np.repeat(a, 2, 1), [x], device)


def test_integer_and_bool_tensors_keep_their_dtype(device: str) -> None:
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    check_op(lambda a: tc.flip(a, axis=0), lambda a: np.flip(a, 0), [i], device)
    check_op(lambda a: tc.roll(a, 1, axis=1), lambda a: np.roll(a, 1, 1), [i], device)
    check_op(lambda a: tc.tile(a, (1, 2)), lambda a: np.tile(a, (1, 2)), [i > 2], device)
    check_op(lambda a: tc.repeat(a, 2, axis=1), lambda a: np.repeat(a, 2, 1), [i.astype(np.uint8)], device)


def test_empty_and_size_one_dimensions(device: str) -> None:
    e = np.zeros((0, 3), np.float32)
    check_op(lambda a: tc.flip(a, axis=0), lambda a: np.flip(a, 0), [e], device)
    check_op(lambda a: tc.roll(a, 2, axis=1), lambda a: np.roll(a, 2, 1), [e], device)
    check_op(lambda a: tc.tile(a, (2, 0)), lambda a: np.tile(a, (2, 0)), [_x(2, 3)], device)
    check_op(lambda a: tc.repeat(a, 0, axis=1), lambda a: np.repeat(a, 0, 1), [_x(2, 3)], device)
    check_op(lambda a: tc.diff(a, axis=0), lambda a: np.diff(a, axis=0), [e], device)
    assert tc.unstack(tc.asarray(e, device=device), axis=0) == ()
    one = _x(1, 3, 1)
    check_op(lambda a: tc.moveaxis(a, -1, 0), lambda a: np.moveaxis(a, -1, 0), [one], device)
    check_op(lambda a: tc.roll(a, 7, axis=0), lambda a: np.roll(a, 7, 0), [one], device)
    check_grad(lambda a: tc.tile(a, (2, 1, 3)), [one], device)
    assert tc.broadcast_shapes((2, 1), (1, 3), ()) == (2, 3)
    assert tc.broadcast_shapes() == ()


def test_zero_d_tensors(device: str) -> None:
    s = tc.asarray(np.float32(2.5), device=device)
    assert_matches(tc.flip(s), np.float32(2.5))
    assert_matches(tc.roll(s, 3), np.array([2.5], np.float32).reshape(()))
    assert_matches(tc.repeat(s, 2), np.full(2, 2.5, np.float32))
    assert_matches(tc.tile(s, (2,)), np.full(2, 2.5, np.float32))
    calls = (lambda: tc.flip(s, axis=0), lambda: tc.roll(s, 1, axis=0), lambda: tc.moveaxis(s, 0, 0),
             lambda: tc.squeeze(s, axis=0))
    for call in calls:
        with pytest.raises(tc.OpError, match=r"(flip|roll|moveaxis|squeeze): axis 0 is out of range for a 0-d tensor"):
            call()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda x: tc.flip(x, axis=2), r"flip: axis 2 is out of range for a 2-D tensor"),
        (lambda x: tc.flip(x, axis=(0, 0)), r"flip: repeated axis"),
        (lambda x: tc.roll(x, (1, 2), axis=0), r"roll: shift \(1, 2\) and axis 0 must have the same length .*\(2, 3\)"),
        (lambda x: tc.roll(x, (1, 2)), r"roll: with axis=None shift must be one int"),
        (lambda x: tc.roll(x, 1.5, axis=0), r"roll: shift must be an int or a tuple of ints"),
        (lambda x: tc.tile(x, (2, -1)), r"tile: repetitions must be non-negative, got \(2, -1\) .*\(2, 3\)"),
        (lambda x: tc.repeat(x, -1), r"repeat: repeats must be non-negative"),
        (lambda x: tc.repeat(x, tc.asarray([1, 2]), axis=1),
         r"repeat: repeats has 2 counts, but axis 1 of shape \(2, 3\) has 3 elements"),
        (lambda x: tc.repeat(x, tc.asarray([1.0, 2.0, 1.0]), axis=1), r"repeat: repeats must be an int or a 1-D integer"),
        (lambda x: tc.moveaxis(x, (0, 1), 0), r"moveaxis: source \(0, 1\) and destination 0 must have the same number"),
        (lambda x: tc.moveaxis(x, 0, 3), r"moveaxis: axis 3 is out of range for a 2-D tensor"),
        (lambda x: tc.moveaxis(x, (0, 0), (0, 1)), r"moveaxis: repeated axis"),
        (lambda x: tc.unstack(x, axis=-3), r"unstack: axis -3 is out of range for a 2-D tensor"),
        (lambda x: tc.unstack(tc.sum(x)), r"unstack: x must have at least one dimension"),
        (lambda x: tc.diff(x, prepend=tc.zeros((3, 1), dtype=x.dtype, device=x.device)),
         r"diff: prepend/append of shape \(3, 1\) does not match x of shape \(2, 3\) outside axis 1"),
        (lambda x: tc.diff(x, n=-1), r"diff: n must be a non-negative int"),
        (lambda x: tc.diff(x > 0), r"diff: x must have a numeric dtype, got bool\[2, 3\]"),
        (lambda x: tc.reshape(x, (4, 2)), r"reshape: cannot reshape a tensor of shape \(2, 3\).*into shape \(4, 2\)"),
        (lambda x: tc.concat([x, tc.zeros((3, 3), device=x.device)], axis=1), r"concat: input 1 has shape \(3, 3\), incompatible with \(2, 3\)"),
        (lambda x: tc.stack([x, tc.zeros((3, 2), device=x.device)]), r"stack: all tensors must have the same shape"),
        (lambda x: tc.squeeze(x, axis=0), r"squeeze: axis 0 of shape \(2, 3\) has size 2, not 1"),
        (lambda x: tc.broadcast_to(x, (3, 3)), r"broadcast_to: cannot broadcast shape \(2, 3\) to \(3, 3\)"),
        (lambda x: tc.broadcast_shapes((2, 3), (4,)), r"broadcast_shapes: shapes \(2, 3\), \(4,\) cannot be broadcast"),
        (lambda x: tc.permute_dims(x, (0,)), r"permute_dims: 1 axes given for a 2-D tensor of shape \(2, 3\)"),
    ],
)
def test_bad_inputs_name_the_op_and_the_shapes(call: object, message: str, device: str) -> None:
    x = tc.asarray(_x(2, 3).astype(np.float32), device=device)
    with pytest.raises(tc.OpError, match=message):
        call(x)


def test_reshape_takes_any_sequence_of_ints_and_to_its_own_shape_returns_the_input(device: str) -> None:
    x = tc.asarray(_x(2, 3).astype(np.float32), device=device)
    for shape in ((2, 3), [2, 3], np.array([2, 3]), (np.int64(2), 3)):
        assert tc.reshape(x, shape) is x, shape  # nothing to do: the tensor itself, as before
    for shape in ((3, 2), [6], np.array([3, -1]), 6):
        out = tc.reshape(x, shape)
        assert out.shape == np.reshape(_x(2, 3), shape).shape and out is not x
    copied = tc.reshape(x, (2, 3), copy=True)
    assert copied is not x and np.array_equal(copied.numpy(), x.numpy())
