"""The rewrite that moves relu's backward before a max pool's backward
(``tensorcore/graph/rewrite_pool.py``): on every device, a traced CNN block's gradients equal the
eager ones (bit for bit on cpu), it fires where the pool chose from the relu's output with
windows that do not overlap, and it leaves the graph alone elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

import tensorcore as tc
from tensorcore.nn import functional as F

rng = np.random.default_rng(41)
KEY = "relu_backward before max_pool2d_backward"


def _block_grads(pool: tuple[int, int], relu_first: bool = True):  # noqa: ANN202 - a traced function
    def grads(x: tc.Tensor, w: tc.Variable) -> list:
        with tc.GradientTape() as tape:
            tape.watch(x)
            y = F.conv2d(x, w, padding=1)
            y = F.max_pool2d(F.relu(y), *pool) if relu_first else F.relu(F.max_pool2d(y, *pool))
            loss = tc.sum(y * tc.sin(y))
        return tape.gradient(loss, [x, w])

    return grads


def _inputs(device: str, dtype: type = np.float32) -> tuple[tc.Tensor, tc.Variable]:
    # integers make ties inside windows and exact zeros after the relu, where the mask decides
    x = tc.asarray(rng.integers(-2, 3, (3, 2, 9, 8)).astype(dtype), device=device)
    w = tc.Variable(rng.integers(-1, 2, (4, 2, 3, 3)).astype(dtype), device=device)
    return x, w


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_traced_block_gradients_equal_eager_with_the_rewrite(device: str, dtype: type) -> None:
    x, w = _inputs(device, dtype)
    fn = _block_grads((2, 2))
    traced = tc.function(fn)
    assert traced.stats(x, w)[KEY] == 1
    # the pool's backward node says what it replaces (the new relu_backward, at the pooled
    # size, may then join an elementwise chain)
    assert "max_pool2d_backward_relu_backward" in traced.code(x, w)
    for got, want in zip(traced(x, w), fn(x, w)):
        got, want = got.numpy(), want.numpy()
        if device.startswith("cpu"):
            assert got.tobytes() == want.tobytes()  # bit for bit, signs of zeros included
        else:
            np.testing.assert_array_equal(got, want)  # -0.0 == +0.0 (see rewrite_pool.py)


@pytest.mark.parametrize("case", ["overlapping windows", "relu after the pool"])
def test_the_rewrite_leaves_other_patterns_alone(device: str, case: str) -> None:
    # Overlapping windows: an element chosen twice gets the sum of two gradients, which the
    # mask must see whole. A relu after the pool: the pool did not choose from the relu's output.
    x, w = _inputs(device)
    fn = _block_grads((3, 2)) if case == "overlapping windows" else _block_grads((2, 2), relu_first=False)
    traced = tc.function(fn)
    assert traced.stats(x, w)[KEY] == 0
    for got, want in zip(traced(x, w), fn(x, w)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_a_pool_gradient_with_another_reader_is_left_alone() -> None:
    # The pool's backward result is also returned: moving the mask before it would change it.
    x, w = _inputs("cpu")

    def fn(x: tc.Tensor) -> list:
        y = F.conv2d(x, w, padding=1)
        r = F.relu(y)
        with tc.GradientTape() as tape:
            tape.watch(r)
            loss = tc.sum(F.max_pool2d(r, 2) ** 2)
        (gr,) = tape.gradient(loss, [r])
        return [gr, gr * (r > 0)]

    traced = tc.function(fn)
    assert traced.stats(x)[KEY] == 0
    for got, want in zip(traced(x), fn(x)):
        assert got.numpy().tobytes() == want.numpy().tobytes()
