"""OpenCL data movement, indexing and fused optimizer updates against NumPy and the cpu.

Views must share the base's buffer (a write through setitem shows in them), copies and
gathers must match NumPy for every dtype and layout (negative steps, broadcasts, empty and
size-1 dimensions, non-contiguous inputs), scatter-adds must accumulate repeated indices,
in-place ops must leave their target unchanged when they fail, and none of these ops may
fall back to cpu on float32.

Index values are checked on the device: getitem, take, take_along_axis, embedding and the
scatter-adds never wait for the queue, and a bad index raises ``OpError`` at the next read,
once, after which the device goes on (only setitem, in place, still raises at the call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

import tensorcore as tc
from tensorcore import optim, registry
from tensorcore.dispatch import apply, apply_inplace
from tensorcore.ops.dense import _EMBEDDING_BACKWARD
from tensorcore.ops.indexing import scatter_add, scatter_along_axis
from tensorcore.ops.normalization import _RUNNING_UPDATE
from tensorcore.ops.optim_updates import ADAM_SCHEDULE, ADAM_STEP, ASSIGN, ASSIGN_ADD, ASSIGN_SUB, SGD_STEP

CL = "opencl:0"
pytestmark = pytest.mark.skipif(
    CL not in [str(info.device) for info in tc.devices()],
    reason="opencl:0 is not available (no OpenCL driver such as PoCL, or the backend failed to start)",
)
MOVEMENT_OPS = {"permute_dims", "broadcast_to", "reshape", "flip", "stop_gradient", "concat", "tile", "tril",
                "triu", "roll", "getitem", "setitem", "scatter_add", "take_along_axis", "scatter_along_axis",
                "embedding", "embedding_backward", "repeat", "assign", "assign_add", "assign_sub", "sgd_step",
                "adam_step", "adam_schedule", "batch_norm_update_running"}
rng = np.random.default_rng(7)


def cl(a: object) -> tc.Tensor:
    return tc.asarray(a, device=CL)


def buf(t: tc.Tensor) -> object:
    return t._data.buf


def assert_no_fallbacks() -> None:
    used = {key.split("@")[0] for key in tc.placement_stats()["fallbacks"]}
    assert not used & MOVEMENT_OPS, f"fell back to cpu: {used & MOVEMENT_OPS}"


# --- views ------------------------------------------------------------------------------------


def test_views_share_the_buffer_and_see_writes_to_the_base() -> None:
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = cl(x)
    views = {
        "permute": (tc.permute_dims(t, (2, 0, 1)), lambda a: a.transpose(2, 0, 1)),
        "broadcast": (tc.broadcast_to(t[:, :1], (5, 2, 3, 4)), lambda a: np.broadcast_to(a[:, :1], (5, 2, 3, 4))),
        "reshape": (tc.reshape(t, (6, 4)), lambda a: a.reshape(6, 4)),
        "slice": (t[1, ::-2, None, 3:0:-2], lambda a: a[1, ::-2, None, 3:0:-2]),
        "ellipsis": (t[..., 1], lambda a: a[..., 1]),
        "flip": (tc.flip(t, axis=(0, 2)), lambda a: np.flip(a, (0, 2))),
        "stop_gradient": (tc.stop_gradient(t), lambda a: a),
        "squeeze": (tc.squeeze(t[:1], axis=0), lambda a: a[0]),
    }
    for name, (view, _) in views.items():
        assert buf(view) is buf(t), name
    t[0, 1:, ::3] = cl(np.float32([[-1, -2], [-3, -4]]))
    x[0, 1:, ::3] = [[-1, -2], [-3, -4]]
    t[1] = 9.0
    x[1] = 9.0
    for name, (view, ref) in views.items():
        np.testing.assert_array_equal(view.numpy(), ref(x), err_msg=name)
    # further ops on views (whatever kernels they run) see the view, not the buffer
    np.testing.assert_allclose((views["slice"][0] + 1).numpy(), x[1, ::-2, None, 3:0:-2] + 1)
    np.testing.assert_allclose(tc.sum(views["permute"][0], axis=0).numpy(), x.transpose(2, 0, 1).sum(0), rtol=1e-6)
    np.testing.assert_allclose(tc.matmul(views["permute"][0][0], views["flip"][0][0]).numpy(),
                               x.transpose(2, 0, 1)[0] @ np.flip(x, (0, 2))[0], rtol=1e-5)
    assert_no_fallbacks()


def test_reshape_is_a_view_exactly_where_numpy_s_is() -> None:
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    t = cl(a)
    cases = [((1, 0, 2), (slice(None), slice(None, None, -1)), (4, 15)),
             ((1, 0, 2), (), (12, 5)), ((0, 2, 1), (), (3, 20)), ((2, 1, 0), (), (-1,)),
             ((0, 1, 2), (slice(None), slice(1, 3)), (3, 2, 5, 1)), ((0, 1, 2), (slice(0, 1),), (20, 1))]
    for perm, key, shape in cases:
        b, v = a.transpose(perm)[key], tc.permute_dims(t, perm)[key]
        r = tc.reshape(v, shape)
        np.testing.assert_array_equal(r.numpy(), b.reshape(shape))
        assert (buf(r) is buf(t)) == np.shares_memory(b.reshape(shape), a), (perm, key, shape)
    assert tc.reshape(cl(np.zeros((0, 3))), (3, 0)).shape == (3, 0)
    assert_no_fallbacks()


def test_writes_into_a_broadcast_view_are_refused() -> None:
    t = cl(np.zeros(3, np.float32))
    b = tc.broadcast_to(t, (2, 3))
    with pytest.raises(tc.OpError):
        b[0] = 1.0
    np.testing.assert_array_equal(t.numpy(), np.zeros(3))


# --- getitem, setitem, scatter_add ------------------------------------------------------------

X = rng.standard_normal((3, 4, 5)).astype(np.float32)
KEYS = {
    "neg_steps": (slice(None, None, -2), 1, slice(4, 0, -3)),
    "none_ellipsis": (None, 0, ..., None, slice(1, 4)),
    "empty_slice": (slice(3, 1),),
    "scalar": (-1, -1, -1),
    "int_array_neg": (np.array([2, 0, -1]),),
    "broadcast_arrays": (slice(None), np.array([[1], [3]]), np.array([0, 4, 2])),
    "separated_arrays": (np.array([1, 2]), slice(None), np.array([0, -5])),
    "int_beside_array": (0, slice(None), np.array([1, 1, 3], np.int32)),
    "none_splits_advanced": (slice(None), 0, None, np.array([1, 2], np.uint8)),
    "bool_rows": (np.array([True, False, True]),),
    "bool_2d_after_slice": (slice(None, None, -1), X[0] > 0),
    "bool_all": (X > 0,),
    "arrays_around_ellipsis": (np.array([1, 1]), ..., np.array([2, 2])),
    "zero_d_and_empty": (np.array(1), np.zeros(0, np.int64)),
}


def _tc_key(key: tuple) -> tuple:
    return tuple(cl(k) if isinstance(k, np.ndarray) else k for k in key)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_getitem_setitem_scatter_add_match_numpy(name: str) -> None:
    key = KEYS[name]
    base = cl(X)
    for x, t in ((X, base), (X.transpose(2, 1, 0)[::-1].transpose(2, 1, 0), tc.permute_dims(tc.flip(tc.permute_dims(base, (2, 1, 0)), axis=0), (2, 1, 0)))):
        np.testing.assert_array_equal(t[_tc_key(key)].numpy(), x[key])
    ref = X[key]
    value = rng.standard_normal(ref.shape[-1:] if ref.ndim else ()).astype(np.float32)  # broadcast over rows
    y, ty = X.copy(), cl(X)
    y[key] = value
    ty[_tc_key(key)] = cl(value)
    np.testing.assert_array_equal(ty.numpy(), y)
    g = rng.standard_normal(ref.shape).astype(np.float32)
    expected = np.zeros_like(X)
    np.add.at(expected, key, g)
    np.testing.assert_allclose(scatter_add(cl(g), X.shape, _tc_key(key)).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert_no_fallbacks()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_scatter_add_accumulates_repeated_indices(dtype: type) -> None:
    idx = np.array([[0, 2, 2], [2, 2, 0]])
    g = rng.integers(-5, 5, (2, 3, 4)).astype(dtype)
    expected = np.zeros((3, 4), dtype)
    np.add.at(expected, idx, g)
    got = scatter_add(cl(g), (3, 4), cl(idx))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.numpy(), expected)
    hot = np.zeros(5000, np.int64)  # every element onto one: the compare-and-swap loop under contention
    np.testing.assert_allclose(scatter_add(cl(np.ones(5000, dtype)), (2,), cl(hot)).numpy(), [5000, 0])


def test_setitem_variants_and_failures_leave_the_target_unchanged() -> None:
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    t = cl(x)
    t[1:, ::-2] = 5.5  # Python scalar
    x[1:, ::-2] = 5.5
    t[1:] = t[:-1]  # overlapping source and target: read before written
    x[1:] = x[:-1].copy()
    t[cl(np.array([True, False, True]))] = cl(np.array([[1.0], [2.0]]))  # (2, 1) broadcast over the rows
    x[[True, False, True]] = [[1.0], [2.0]]
    np.testing.assert_array_equal(t.numpy(), x)
    for bad_key, bad_value in [((cl(np.array([0, 3])),), 0.0), ((slice(None), cl(np.array([-5]))), 0.0),
                               ((slice(0, 2),), cl(np.zeros((3, 4))))]:
        with pytest.raises(tc.OpError):
            t[bad_key] = bad_value
        np.testing.assert_array_equal(t.numpy(), x)
    with pytest.raises(tc.OpError, match=r"getitem: index 3 is out of bounds for axis 0 with size 3 \(at position 0\)"):
        cl(x)[cl(np.array([3]))].numpy()  # a gather: checked on the device, raised at the read
    assert_no_fallbacks()


def test_movement_for_every_dtype_and_empty_tensors() -> None:
    for dtype in (np.bool_, np.int8, np.uint16, np.float16, np.int32, np.uint64, np.float64):
        a = (rng.standard_normal((3, 5)) * 4).astype(dtype)
        t = cl(a)
        np.testing.assert_array_equal(tc.permute_dims(t, (1, 0))[::-2].numpy(), a.T[::-2])
        np.testing.assert_array_equal(t[cl(np.array([2, 0, 2])), 1:].numpy(), a[[2, 0, 2], 1:])
        np.testing.assert_array_equal(tc.concat([t, t[:1, ::-1]], axis=0).numpy(), np.concatenate([a, a[:1, ::-1]]))
        np.testing.assert_array_equal(tc.tril(t, k=1).numpy(), np.tril(a, 1))
        np.testing.assert_array_equal(tc.tile(t[:, ::2], (2, 1, 2)).numpy(), np.tile(a[:, ::2], (2, 1, 2)))
        np.testing.assert_array_equal(tc.repeat(t, cl(np.array([0, 2, 1])), axis=0).numpy(), np.repeat(a, [0, 2, 1], axis=0))
        t[0, ::2] = t[2, ::2]
        a[0, ::2] = a[2, ::2]
        t[1, ::-3] = 1  # a Python scalar: its bits travel as a kernel argument
        a[1, ::-3] = 1
        np.testing.assert_array_equal(t.numpy(), a)
    e = cl(np.zeros((0, 4), np.float32))
    for got, want in [(e[:, 1], (0,)), (e[cl(np.zeros((0, 4), bool))], (0,)), (tc.permute_dims(e, (1, 0)), (4, 0)),
                      (tc.concat([e, e], axis=0), (0, 4)), (tc.tile(e, (3,)), (0, 12)), (tc.roll(e, 2, axis=1), (0, 4)),
                      (tc.triu(e), (0, 4)), (tc.reshape(e, (4, 0)), (4, 0)), (cl(np.ones(3))[cl(np.zeros(0, np.int64))], (0,))]:
        assert got.numpy().shape == want
    assert_no_fallbacks()


def test_copies_match_numpy_on_non_contiguous_inputs() -> None:
    a = rng.standard_normal((4, 1, 6, 5)).astype(np.float32)
    v = a.transpose(3, 1, 0, 2)[::-1, :, 1::2]  # negative step, size-1 dim, odd sizes
    t = tc.permute_dims(cl(a), (3, 1, 0, 2))[::-1, :, 1::2]
    checks = [
        (tc.concat([t, t[:2]], axis=0), np.concatenate([v, v[:2]], 0)),
        (tc.concat([t, t], axis=3), np.concatenate([v, v], 3)),
        (tc.roll(t, (2, -1), axis=(0, 3)), np.roll(v, (2, -1), (0, 3))),
        (tc.roll(t, 7), np.roll(v, 7)),
        (tc.flip(t), np.flip(v)),
        (tc.tile(t, (2, 1, 1, 1, 3)), np.tile(v, (2, 1, 1, 1, 3))),
        (tc.repeat(t, 3, axis=2), np.repeat(v, 3, axis=2)),
        (tc.repeat(t, 2), np.repeat(v, 2)),
        (tc.triu(t, k=-1), np.triu(v, -1)),
        (tc.tril(t, k=2), np.tril(v, 2)),
        (tc.take_along_axis(t, cl(np.array([[[[2, 0, -1]]]])), axis=3), np.take_along_axis(v, np.array([[[[2, 0, -1]]]]), 3)),
    ]
    for got, want in checks:
        np.testing.assert_array_equal(got.numpy(), want)
    assert_no_fallbacks()


def test_take_along_axis_embedding_and_their_gradients_accumulate() -> None:
    x = rng.standard_normal((3, 4))
    idx = np.array([[0, 3, 3], [1, 1, 1], [2, 0, 2]])
    np.testing.assert_array_equal(tc.take_along_axis(cl(x), cl(idx), axis=1).numpy(), np.take_along_axis(x, idx, 1))
    g = rng.standard_normal(idx.shape)
    expected = np.zeros_like(x)
    np.put_along_axis(expected, idx, 0, 1)
    for r in range(3):
        np.add.at(expected[r], idx[r], g[r])
    np.testing.assert_allclose(scatter_along_axis(cl(g), cl(idx), 1, x.shape).numpy(), expected)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    ids = np.array([[4, 0], [4, 4]], np.int32)
    np.testing.assert_array_equal(tc.nn.functional.embedding(cl(ids), cl(w)).numpy(), w[ids])
    np.testing.assert_array_equal(tc.nn.functional.embedding(cl(ids), tc.permute_dims(cl(w.T.copy()), (1, 0))).numpy(), w[ids])
    ge = rng.standard_normal((2, 2, 3)).astype(np.float32)
    want = np.zeros_like(w)
    np.add.at(want, ids.reshape(-1), ge.reshape(-1, 3))
    got = tc.dispatch.apply(_EMBEDDING_BACKWARD, (cl(ge), cl(ids)), {"num_embeddings": 5})
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    assert_no_fallbacks()


# --- index values checked on the device --------------------------------------------------------

W = rng.standard_normal((5, 3)).astype(np.float32)
G = rng.standard_normal((2, 3)).astype(np.float32)


def _device() -> object:
    return registry.get_backend("opencl").device(0)


_POSITION = r"( \(at position (\d+|\([\d, ]+\))\))?"  # the bad index's place in its index tensor


def _axis_rule(op: str, axis: int, n: int) -> str:
    # take runs getitem's kernel; its error names take, its indices and axis (as on cpu)
    head = (rf"take: invalid indices \w+\[[\d, ]*\] along axis {axis} of a tensor of shape \([\d, ]*\): "
            if op == "take" else f"{op}: ")
    return rf"{head}index -?\d+ is out of bounds for axis {axis} with size {n}{_POSITION}; expected -{n} <= index < {n}"


def _row_rule(op: str, rows: int) -> str:
    what = f"a weight with {rows} rows" if op == "embedding" else f"{rows} rows"
    return rf"{op}: (index -?\d+|every index) is out of range for {what}{_POSITION}; expected 0 <= index < {rows}"


def _many_with_one_bad(n: int, bad: int) -> np.ndarray:
    idx = np.arange(100_000) % n - n // 2  # ~100 chunks of work items, negatives included
    idx[77_777] = bad
    return idx


BAD_INDICES: dict[str, tuple[Callable[[], tc.Tensor], str]] = {
    "getitem": (lambda: cl(X)[cl(np.array([0, 3, 1]))], _axis_rule("getitem", 0, 3)),
    "getitem_too_negative": (lambda: cl(X)[:, cl(np.array([-5, 0], np.int32))], _axis_rule("getitem", 1, 4)),
    "getitem_second_array": (lambda: cl(X)[cl(np.array([0, 1])), :, cl(np.array([[4], [5]]))], _axis_rule("getitem", 2, 5)),
    "getitem_huge": (lambda: cl(X)[1, cl(np.array([2**40]))], _axis_rule("getitem", 1, 4)),  # a wild read would crash
    "getitem_one_bad_among_many": (lambda: cl(np.arange(1000.0))[cl(_many_with_one_bad(1000, 1000))],
                                   _axis_rule("getitem", 0, 1000)),
    "take": (lambda: tc.take(cl(X), cl(np.array([2, 5])), axis=2), _axis_rule("take", 2, 5)),
    "take_along_axis": (lambda: tc.take_along_axis(cl(X[0]), cl(np.array([[0], [4], [-6], [1]])), axis=1),
                        _axis_rule("take_along_axis", 1, 5)),
    "embedding": (lambda: tc.nn.functional.embedding(cl(np.array([[0, 5]])), cl(W)), _row_rule("embedding", 5)),
    "embedding_negative": (lambda: tc.nn.functional.embedding(cl(np.array([0, -1], np.int32)), cl(W)),
                           _row_rule("embedding", 5)),  # no wrapping: the cpu refuses negatives too
    "embedding_backward": (lambda: apply(_EMBEDDING_BACKWARD, (cl(G), cl(np.array([1, 7]))), {"num_embeddings": 5}),
                           _row_rule("embedding_backward", 5)),
    "scatter_add_huge": (lambda: scatter_add(cl(G), (3, 3), cl(np.array([1, -2**40]))), _axis_rule("scatter_add", 0, 3)),
    "scatter_along_axis": (lambda: scatter_along_axis(cl(G), cl(np.array([[0, 1, 4], [0, 0, 0]])), 1, (2, 4)),
                           _axis_rule("scatter_along_axis", 1, 4)),
}


@pytest.mark.parametrize("name", sorted(BAD_INDICES))
def test_a_bad_index_raises_at_the_next_read_once_and_the_device_goes_on(name: str) -> None:
    make, rule = BAD_INDICES[name]
    result = make()  # no error yet: the indices were not read back
    with pytest.raises(tc.OpError, match=rule):
        result.numpy()
    # Reported once: a later index op on the same device (which checks its indices through
    # the same error flag) reads fine, and nothing is left pending for a synchronize.
    good = cl(np.arange(4.0))[cl(np.array([-1, 0, 3]))]
    np.testing.assert_array_equal(good.numpy(), [3.0, 0.0, 3.0])
    tc.synchronize(CL)
    assert_no_fallbacks()


def test_a_bad_index_is_reported_at_synchronize_and_at_a_read_of_another_tensor() -> None:
    other = cl(np.ones(3, np.float32))
    tc.take(cl(X), cl(np.array([9])), axis=0)
    with pytest.raises(tc.OpError, match=_axis_rule("take", 0, 3)):
        tc.synchronize(CL)
    tc.nn.functional.embedding(cl(np.array([5])), cl(W))
    with pytest.raises(tc.OpError, match=_row_rule("embedding", 5)):
        (other + 1).numpy()
    np.testing.assert_array_equal((other + 1).numpy(), [2, 2, 2])
    # tc.synchronize() of every device raises it too, once, after draining every queue
    tc.take(cl(X), cl(np.array([9])), axis=0)
    with pytest.raises(tc.OpError, match=_axis_rule("take", 0, 3)):
        tc.synchronize()
    tc.synchronize()


def test_index_errors_known_from_the_shapes_raise_at_the_call() -> None:
    # An axis of length 0 has no valid index: no read needed, and nothing to gather from.
    with pytest.raises(tc.OpError, match=r"out of bounds for axis 1 with size 0"):
        cl(np.zeros((2, 0), np.float32))[:, cl(np.array([0]))]
    with pytest.raises(tc.OpError, match=_row_rule("embedding", 0)):
        tc.nn.functional.embedding(cl(np.array([0])), cl(np.zeros((0, 3), np.float32)))
    tc.synchronize(CL)  # nothing was left pending


NEGATIVE_CASES: dict[str, tuple[Callable[[tc.Tensor], tc.Tensor], Callable[[np.ndarray], np.ndarray]]] = {
    "getitem": (lambda t: t[cl(np.array([-1, -3, 2, 0]))], lambda a: a[[-1, -3, 2, 0]]),
    "two_arrays_int8": (lambda t: t[cl(np.array([[-1], [0]], np.int8)), 1:, cl(np.array([-5, 4, -1], np.int8))],
                        lambda a: a[np.array([[-1], [0]]), 1:, np.array([-5, 4, -1])]),
    "strided_index_view": (lambda t: t[:, cl(np.array([[-4, 3, 0, -1], [1, 1, 2, 2]]))[:, ::-2]],
                           lambda a: a[:, np.array([[-4, 3, 0, -1], [1, 1, 2, 2]])[:, ::-2]]),
    "take": (lambda t: tc.take(t, cl(np.array([-5, 4, -2], np.int32)), axis=2), lambda a: np.take(a, [-5, 4, -2], 2)),
    "take_along_axis": (lambda t: tc.take_along_axis(t, cl(np.array([[[-1], [0]], [[-4], [3]], [[2], [-2]]])), axis=1),
                        lambda a: np.take_along_axis(a, np.array([[[-1], [0]], [[-4], [3]], [[2], [-2]]]), 1)),
    "many_chunks": (lambda t: tc.reshape(t, (-1,))[cl(_many_with_one_bad(60, -60))],
                    lambda a: a.reshape(-1)[_many_with_one_bad(60, -60)]),
}


@pytest.mark.parametrize("name", sorted(NEGATIVE_CASES))
def test_negative_indices_wrap_as_numpy_s_do(name: str) -> None:
    ours, numpys = NEGATIVE_CASES[name]
    np.testing.assert_array_equal(ours(cl(X)).numpy(), numpys(X))
    view = X.transpose(2, 1, 0)[::-1].transpose(2, 1, 0)  # the same ops on a negative-stride view
    np.testing.assert_array_equal(ours(tc.flip(cl(X), axis=2)).numpy(), numpys(view))
    tc.synchronize(CL)
    assert_no_fallbacks()


def test_gradients_through_negative_and_repeated_indices_match_numpy() -> None:
    idx = np.array([-1, 0, -1, 2, -4])
    g = rng.standard_normal((3, 5, 5)).astype(np.float32)
    want = np.zeros_like(X)
    np.add.at(want, (slice(None), idx), g)
    got = scatter_add(cl(g), X.shape, (slice(None), cl(idx)))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    idx2 = np.array([[-1, 2], [0, -3]])
    g2 = rng.standard_normal((2, 2)).astype(np.float32)
    want2 = np.zeros((2, 3), np.float32)
    for r in range(2):
        np.add.at(want2[r], idx2[r], g2[r])
    np.testing.assert_allclose(scatter_along_axis(cl(g2), cl(idx2), 1, (2, 3)).numpy(), want2, rtol=1e-6)
    assert_no_fallbacks()


def test_empty_index_tensors_match_numpy() -> None:
    empty, empty2 = np.zeros(0, np.int64), np.zeros((2, 0), np.int32)
    checks = [
        (cl(X)[cl(empty)], X[empty]),
        (cl(X)[:, cl(empty2)], X[:, empty2]),
        (cl(X)[cl(empty2), 1:, cl(np.array([0]))], X[empty2, 1:, np.array([0])]),
        (tc.take(cl(X), cl(empty), axis=1), np.take(X, empty, 1)),
        (tc.take_along_axis(cl(X), cl(np.zeros((3, 0, 5), np.int64)), axis=1), np.zeros((3, 0, 5), np.float32)),
        (tc.nn.functional.embedding(cl(empty), cl(W)), W[empty]),
        (tc.nn.functional.embedding(cl(empty2), cl(W)), W[empty2]),
        (apply(_EMBEDDING_BACKWARD, (cl(np.zeros((0, 3), np.float32)), cl(empty)), {"num_embeddings": 5}), np.zeros((5, 3))),
        (scatter_add(cl(np.zeros((0, 4, 5), np.float32)), X.shape, cl(empty)), np.zeros_like(X)),
        (cl(np.zeros((0, 3), np.float32))[cl(empty)], np.zeros((0, 3))),  # an empty axis, no index: fine
    ]
    for got, want in checks:
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.numpy(), want)
    tc.synchronize(CL)
    assert_no_fallbacks()


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.float64])
def test_masks_over_negative_strides_for_every_width(dtype: type) -> None:
    # A mask's offsets are negative where x has negative strides: taken as they are, never
    # wrapped like an index (which would move them 2**62 elements away on 1- and 2-byte types).
    a = np.arange(24).reshape(2, 3, 4).astype(dtype)
    v, t = a[::-1, :, ::-1], tc.flip(cl(a), axis=(0, 2))
    m = (v % 3) == 0
    np.testing.assert_array_equal(t[cl(m)].numpy(), v[m])
    np.testing.assert_array_equal(t[cl(np.array([[-1], [0]])), cl(m[0])].numpy(), v[np.array([[-1], [0]]), m[0]])
    assert_no_fallbacks()


def test_index_ops_enqueue_without_waiting_for_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """getitem, take, take_along_axis, embedding and the scatter-adds read nothing back: with
    the queue held shut by a user event, they all return; and no host read happens."""
    dev = _device()
    cl_mod = dev.cl
    x, w, g = cl(X), cl(W), cl(G)
    i, i2 = cl(np.array([2, -1, 0])), cl(np.array([[1, -2], [0, 4]], np.int32))
    along, ids = cl(np.array([[[-1], [0], [2]]] * 3)), cl(np.array([[4, 0], [4, 4]]))

    def enqueue() -> dict[str, tc.Tensor]:
        return {
            "getitem": x[i],
            "getitem_two_arrays": x[i[:2, None], :, i2],
            "take": tc.take(x, i2, axis=2),
            "take_along_axis": tc.take_along_axis(x, along, axis=1),
            "embedding": tc.nn.functional.embedding(ids, w),
            "embedding_backward": apply(_EMBEDDING_BACKWARD, (tc.broadcast_to(g[:1], (2, 2, 3)), ids), {"num_embeddings": 5}),
            "scatter_add": scatter_add(g, (3, 3), cl(np.array([-1, -1]))),
            "scatter_along_axis": scatter_along_axis(g, cl(np.array([[0, -1, 0], [1, 1, -3]])), 1, (2, 3)),
        }

    want = {k: v.numpy() for k, v in enqueue().items()}  # builds the kernels; checked against NumPy below
    tc.synchronize(CL)
    reads = []
    finished = dev.finished  # every host read or drain of the queue ends in CLDevice.finished

    def counting_finished() -> None:
        reads.append(1)
        finished()

    monkeypatch.setattr(dev, "finished", counting_finished)
    gate = cl_mod.UserEvent(dev.context)
    cl_mod.enqueue_barrier(dev.queue, wait_for=[gate])  # nothing after this runs until the gate opens
    got: dict[str, object] = {}

    def worker() -> None:
        try:
            got.update(enqueue())
        except BaseException as exc:  # reported by the main thread
            got["error"] = exc

    thread = threading.Thread(target=worker, daemon=True)
    try:
        thread.start()
        thread.join(timeout=60)
        returned = not thread.is_alive()
    finally:
        gate.set_status(cl_mod.command_execution_status.COMPLETE)
        thread.join()
    assert returned, "an index op waited for the queue"
    assert "error" not in got, got.get("error")
    assert not reads, f"{len(reads)} host read(s) while enqueuing index ops"
    monkeypatch.undo()
    for name, tensor in got.items():
        np.testing.assert_array_equal(tensor.numpy(), want[name], err_msg=name)
    np.testing.assert_array_equal(want["getitem"], X[[2, -1, 0]])
    np.testing.assert_array_equal(want["take"], np.take(X, [[1, -2], [0, 4]], 2))
    np.testing.assert_array_equal(want["embedding"], W[[[4, 0], [4, 4]]])
    expected = np.zeros((5, 3), np.float32)
    np.add.at(expected, [4, 0, 4, 4], np.broadcast_to(G[:1], (4, 3)))
    np.testing.assert_allclose(want["embedding_backward"], expected, rtol=1e-6)
    assert_no_fallbacks()


# --- in-place updates -------------------------------------------------------------------------


def _optimizer_run(cls: type, device: str, dtype: type, transposed_grads: bool, **kwargs: object) -> np.ndarray:
    p0 = np.random.default_rng(1).standard_normal((5, 3)).astype(dtype)
    grads = [np.random.default_rng(10 + k).standard_normal((3, 5)).astype(dtype) for k in range(4)]
    p = tc.Variable(p0, device=device)
    opt = cls([p], **kwargs)
    for g in grads:
        t = tc.asarray(g, device=device)
        opt.step([tc.permute_dims(t, (1, 0)) if transposed_grads else tc.asarray(g.T.copy(), device=device)])
    return p.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", [
    (optim.SGD, {"lr": 0.1}), (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.5}), (optim.Adam, {"lr": 0.01}),
    (optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}), (optim.AdamW, {"lr": 0.02, "weight_decay": 0.1}),
])
def test_fused_optimizer_steps_match_the_cpu(cls: type, kwargs: dict, dtype: type) -> None:
    want = _optimizer_run(cls, "cpu", dtype, False, **kwargs)
    for transposed in (False, True):  # contiguous and strided kernel builds
        got = _optimizer_run(cls, CL, dtype, transposed, **kwargs)
        np.testing.assert_allclose(got, want, rtol=2e-6 if dtype == np.float32 else 1e-14, atol=1e-7)
    assert_no_fallbacks()


def test_assign_updates_and_running_statistics() -> None:
    v = tc.Variable(np.ones((2, 3), np.float32), device=CL)
    v.assign(np.full((2, 3), 4.0, np.float32))
    v.assign_add(cl(np.arange(6, dtype=np.float32).reshape(3, 2)).mT)
    v.assign_sub(np.ones((2, 3), np.float32))
    want = 3.0 + np.arange(6, dtype=np.float32).reshape(3, 2).T
    np.testing.assert_array_equal(v.numpy(), want)
    apply_inplace(ASSIGN_ADD, v, (2.0,))  # a Python scalar, broadcast
    apply_inplace(ASSIGN_SUB, v, (tc.broadcast_to(cl(np.float32([1, 2, 3])), (2, 3)),))
    apply_inplace(ASSIGN, v[0], (v[1],))  # a row of the same buffer: copied before written
    apply_inplace(ASSIGN, tc.permute_dims(v, (1, 0))[2], (-1.5,))
    want = want + 2 - [1, 2, 3]
    want[0] = want[1]
    want[:, 2] = -1.5
    np.testing.assert_array_equal(v.numpy(), want)
    stat = cl(np.ones(4, np.float32))
    apply_inplace(_RUNNING_UPDATE, stat, (cl(np.arange(4, dtype=np.float32)),), {"momentum": 0.1, "correction": 1.5})
    np.testing.assert_allclose(stat.numpy(), 0.9 + 0.15 * np.arange(4), rtol=1e-6)
    with pytest.raises(tc.OpError, match="cannot take a batch statistic of shape"):
        apply_inplace(_RUNNING_UPDATE, stat, (cl(np.ones(3, np.float32)),), {"momentum": 0.1, "correction": 1.0})
    np.testing.assert_allclose(stat.numpy(), 0.9 + 0.15 * np.arange(4), rtol=1e-6)
    assert_no_fallbacks()


def test_integer_in_place_updates_build_without_the_float_only_kernels() -> None:
    """optim.cl is one program: with an integer T the Adam kernel (sqrt of T) is left out."""
    for dtype in (np.int64, np.int32):
        v = tc.Variable(np.arange(4, dtype=dtype), trainable=False, device=CL)
        v.assign_add(cl(np.full(4, 3, dtype)))
        v.assign_sub(np.ones(4, dtype))
        np.testing.assert_array_equal(v.numpy(), np.arange(4, dtype=dtype) + 2)
    assert_no_fallbacks()


def test_sgd_without_velocity_and_adam_step_direct() -> None:
    p = cl(np.ones(7, np.float32))
    lr, step = cl(np.array(0.25)), cl(np.array(0.0))  # the device scalars the optimizers pass
    apply_inplace(SGD_STEP, p, (cl(np.full(7, 2.0, np.float32)), None, lr, step),
                  {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
    np.testing.assert_array_equal(p.numpy(), np.full(7, 0.5))
    assert step.numpy() == 1.0  # the counting build advanced it
    apply_inplace(SGD_STEP, p, (cl(np.full(7, 2.0, np.float32)), None, 0.125, None),  # a Python number: uploaded
                  {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
    np.testing.assert_array_equal(p.numpy(), np.full(7, 0.25))
    assert step.numpy() == 1.0
    m, v = cl(np.zeros(7, np.float32)), cl(np.zeros(7, np.float32))
    schedule = cl(np.array([1.0, 1.0, 0.0, 0.0]))
    apply_inplace(ASSIGN, lr, (0.1,))
    apply_inplace(ADAM_SCHEDULE, schedule, (lr, step), {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    first = [0.9, 0.999, 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9), 1e-8 * np.sqrt(1 - 0.999)]
    np.testing.assert_array_equal(schedule.numpy(), first)  # float64, rounded as NumPy rounds
    assert step.numpy() == 2.0
    apply_inplace(ASSIGN_ADD, p, (cl(np.full(7, 0.25, np.float32)),))  # back to 0.5, as before
    apply_inplace(ADAM_STEP, p, (cl(np.ones(7, np.float32)), m, v, schedule, lr), {
        "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0, "decoupled": False})
    np.testing.assert_allclose(p.numpy(), np.full(7, 0.4), rtol=1e-6)
    np.testing.assert_allclose(m.numpy(), np.full(7, 0.1), rtol=1e-6)
    apply_inplace(ADAM_SCHEDULE, schedule, (lr, None), {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
    np.testing.assert_allclose(schedule.numpy()[:2], [0.9**2, 0.999**2], rtol=1e-15)
    assert step.numpy() == 2.0
    with pytest.raises(tc.OpError):  # a schedule of the wrong size: the cpu reference rejects it too
        apply_inplace(ADAM_STEP, p, (cl(np.ones(7, np.float32)), m, v, cl(np.ones(2)), lr), {
            "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0, "decoupled": False})
    with pytest.raises(tc.OpError, match="learning rate must be one real number"):
        apply_inplace(SGD_STEP, p, (p, None, cl(np.ones(2)), None), {"momentum": 0.0, "nesterov": False,
                                                                     "weight_decay": 0.0})
    assert_no_fallbacks()


def test_an_lr_tensor_of_another_dtype_falls_back_and_gives_the_cpu_result() -> None:
    """A float32 learning rate on a float64 device is not what the kernels read: the update
    runs on cpu (soft placement), with the same result, and the step counter is written back."""
    p, step = cl(np.ones(3, np.float32)), cl(np.array(4.0))
    apply_inplace(SGD_STEP, p, (cl(np.ones(3, np.float32)), None, cl(np.array(0.5, np.float32)), step),
                  {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
    np.testing.assert_array_equal(p.numpy(), np.full(3, 0.5, np.float32))
    assert step.numpy() == 5.0
    assert tc.placement_stats()["fallbacks"] == {"sgd_step@opencl:0": 1}


def test_large_copy_and_update_beyond_2_to_the_24() -> None:
    n = (1 << 24) + 3
    a = np.arange(n, dtype=np.float32)
    t = cl(a)
    np.testing.assert_array_equal(t[::-1].numpy()[[0, 1, n // 2, -1]], a[::-1][[0, 1, n // 2, -1]])
    c = tc.concat([t[n - 5:], t[:1]], axis=0)
    np.testing.assert_array_equal(c.numpy(), np.concatenate([a[n - 5:], a[:1]]))
    v = tc.Variable(np.zeros(n, np.float32), device=CL)
    v.assign_add(t)
    v[n - 1] = -1.0
    got = v.numpy()
    assert got[n - 2] == a[n - 2] and got[n - 1] == -1.0 and got[(1 << 24) + 1] == a[(1 << 24) + 1]
    assert_no_fallbacks()
