"""Creation functions on every device against NumPy; tril/triu and meshgrid gradients."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc

from support import assert_matches, check_grad, check_op

rng = np.random.default_rng(5)


def _on(t: tc.Tensor, device: str) -> None:
    assert str(t.device) == str(tc.Device(device)), f"created on {t.device}, expected {device}"


def test_filled_tensors(device: str) -> None:
    cases = [
        (tc.zeros((2, 3), device=device), np.zeros((2, 3), np.float32)),
        (tc.ones(4, dtype=tc.int8, device=device), np.ones(4, np.int8)),
        (tc.empty((0, 2), device=device), np.zeros((0, 2), np.float32)),
        (tc.full((2, 2), 7, device=device), np.full((2, 2), 7, np.int64)),
        (tc.full((2,), True, device=device), np.full((2,), True)),
        (tc.full((1, 2), 1.5, dtype=tc.float64, device=device), np.full((1, 2), 1.5)),
        (tc.eye(3, 4, k=1, device=device), np.eye(3, 4, k=1, dtype=np.float32)),
        (tc.arange(5, device=device), np.arange(5)),
        (tc.arange(1.0, 2.0, 0.25, device=device), np.arange(1.0, 2.0, 0.25, dtype=np.float32)),
        (tc.linspace(0, 1, 5, device=device), np.linspace(0, 1, 5, dtype=np.float32)),
        (tc.linspace(0, 1, 4, endpoint=False, dtype=tc.float64, device=device), np.linspace(0, 1, 4, endpoint=False)),
    ]
    for t, expected in cases:
        _on(t, device)
        assert_matches(t, expected)


def test_like_functions_and_asarray(device: str) -> None:
    x = tc.asarray(np.arange(6, dtype=np.int16).reshape(2, 3), device=device)
    assert_matches(tc.zeros_like(x), np.zeros((2, 3), np.int16))
    assert_matches(tc.ones_like(x, dtype=tc.float64), np.ones((2, 3)))
    assert_matches(tc.full_like(x, 4), np.full((2, 3), 4, np.int16))
    assert_matches(tc.empty_like(x), np.zeros((2, 3), np.int16))
    _on(tc.zeros_like(x), device)
    assert_matches(tc.asarray([[1, 2], [3, 4]], device=device), np.array([[1, 2], [3, 4]]))
    assert_matches(tc.asarray([1.5, 2.0], device=device), np.array([1.5, 2.0], np.float32))  # default float32
    assert_matches(tc.asarray(x, dtype=tc.float32), np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sizes", [(3,), (3, 2), (2, 3, 4), (0, 2)])
def test_meshgrid(indexing: str, sizes: tuple, device: str) -> None:
    arrays = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    check_op(lambda *a: tuple(tc.meshgrid(*a, indexing=indexing)),
             lambda *a: tuple(np.meshgrid(*a, indexing=indexing)), arrays, device)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_gradient(indexing: str, device: str) -> None:
    check_grad(lambda a, b: tc.meshgrid(a, b, indexing=indexing), [rng.standard_normal(3), rng.standard_normal(2)], device)


@pytest.mark.parametrize("name", ["tril", "triu"])
@pytest.mark.parametrize("k", [-1, 0, 2])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 3, 4), (1, 1), (0, 3)])
def test_tril_triu(name: str, k: int, shape: tuple, device: str) -> None:
    x = rng.standard_normal(shape).astype(np.float32)
    check_op(lambda a: getattr(tc, name)(a, k=k), lambda a: getattr(np, name)(a, k), [x], device)


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_tril_triu_gradient_and_integers(name: str, device: str) -> None:
    check_grad(lambda a: getattr(tc, name)(a, k=-1), [rng.standard_normal((2, 3, 3))], device)
    check_op(lambda a: getattr(tc, name)(a), lambda a: getattr(np, name)(a), [np.arange(12).reshape(3, 4)], device)


def test_from_dlpack(device: str) -> None:
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = tc.from_dlpack(host, device=device)
    _on(t, device)
    assert_matches(t, host)
    copied = tc.from_dlpack(host, copy=True)
    host[0, 0] = 42.0
    assert copied.numpy()[0, 0] == 0.0
    shared = tc.from_dlpack(host, device="cpu")
    assert shared.numpy()[0, 0] == 42.0  # host data is shared without a copy
    again = tc.from_dlpack(t)  # a tensor is a DLPack producer too
    assert_matches(again, t.numpy())
    via_protocol = tc.from_dlpack(tc.asarray(np.ones(3, np.int32), device="cpu"), device=device)
    _on(via_protocol, device)
    assert_matches(via_protocol, np.ones(3, np.int32))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: tc.meshgrid(tc.zeros((2, 2))), r"meshgrid: every input must be a 1-D tensor, but input 0 has shape \(2, 2\)"),
        (lambda: tc.meshgrid(tc.zeros(2), tc.zeros(2, dtype=tc.int32)), r"meshgrid: inputs must share one dtype"),
        (lambda: tc.meshgrid(tc.zeros(2), indexing="yx"), r"meshgrid: indexing must be 'xy' or 'ij'"),
        (lambda: tc.tril(tc.zeros(3)), r"tril: x must be a tensor of at least 2 dimensions, got shape \(3,\)"),
        (lambda: tc.triu(tc.zeros((2, 2)), k=0.5), r"triu: k must be an int"),
        (lambda: tc.from_dlpack([1, 2]), r"from_dlpack: list does not implement the DLPack protocol"),
        (lambda: tc.zeros((2, -1)), r"negative dimensions are not allowed: shape \(2, -1\)"),
        (lambda: tc.linspace(0, 1, -2), r"linspace: num must be non-negative"),
        (lambda: tc.arange(0, 5, 0), r"arange: step must not be zero"),
    ],
)
def test_bad_inputs_name_the_function(call: object, message: str) -> None:
    with pytest.raises(tc.OpError, match=message):
        call()
